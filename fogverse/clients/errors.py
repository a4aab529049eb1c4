"""Errors every backend raises alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fogverse.errors import BrokerUnavailableError

__all__ = ["unreachable", "with_retries"]

T = TypeVar("T")
log = logging.getLogger("fogverse.clients")


def unreachable(servers: str, attempts: int) -> BrokerUnavailableError:
    """No broker answered: say which setting to check."""
    return BrokerUnavailableError(
        f"no Kafka broker answered at {servers} after {attempts} attempts",
        hint="check the bootstrap servers (--bootstrap, the consumer_servers / producer_servers "
        "settings, $CONSUMER_SERVERS, $FOGVERSE_BOOTSTRAP) or start a broker with "
        "`fogverse broker`",
    )


async def with_retries(servers: str, attempts: int, backoff: float,
                       once: Callable[[float], Awaitable[T]],
                       failures: tuple[type[BaseException], ...]) -> T:
    """``once(pause)`` until it answers, doubling the pause (at most 10 s); then unreachable."""
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            return await once(delay)
        except failures as exc:
            log.warning("broker %s unreachable (attempt %d/%d): %s",
                        servers, attempt, attempts, exc)
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
    raise unreachable(servers, attempts)
