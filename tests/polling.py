"""One way for a test to wait for an outcome: poll with a deadline, then fail saying what.

Tests never sleep a fixed time and hope; they wait for the thing they assert, and a
deadline turns "never happened" into a failure that names it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0


def _describe(what: str | None, check: object) -> str:
    return what or getattr(check, "__name__", repr(check))


async def wait_until(
    check: Callable[[], object],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.02,
    what: str | None = None,
) -> None:
    """Await until ``check()`` is truthy; AssertionError naming ``what`` past ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {_describe(what, check)}")
        await asyncio.sleep(interval)


async def wait_for_value(
    probe: Callable[[], Awaitable[T]],
    expected: T,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.2,
) -> None:
    """Await until ``await probe() == expected``; the failure shows the last value seen."""
    deadline = time.monotonic() + timeout
    while (value := await probe()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout}s, expected {expected!r}")
        await asyncio.sleep(interval)


def wait_until_sync(
    check: Callable[[], object],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.05,
    what: str | None = None,
) -> None:
    """Blocking twin of :func:`wait_until` for tests outside an event loop."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {_describe(what, check)}")
        time.sleep(interval)
