"""FogVerse's ``DeployScripts``: deploy functions keyed by provider name.

Deploy functions are user code and may block (a cloud API call, a container
pull). They run in a worker thread unless they are coroutines, so the master's
event loop keeps serving heartbeats while an instance starts.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

from deploy_scripts.config import DeployConfig
from deploy_scripts.errors import DeployError, UnknownProviderError
from deploy_scripts.result import DeployResult
from fogverse.constants import DEFAULT_PROVIDER

__all__ = [
    "AdoptFunction",
    "DeployFunction",
    "DeployReturn",
    "DeployScripts",
    "UnknownProviderError",
]

DeployReturn: TypeAlias = (
    DeployResult | Callable[[], object] | tuple[Any, Callable[[Any], object]] | None
)
"""What a deploy function may return.

A ``DeployResult``; a bare stop callable; FogVerse's ``(handle, shutdown)`` pair,
stopped by calling ``shutdown(handle)``; or ``None`` for "started, no stop handle".
"""

DeployFunction: TypeAlias = Callable[
    [logging.Logger, DeployConfig], DeployReturn | Awaitable[DeployReturn]
]


AdoptFunction: TypeAlias = Callable[
    [str, Mapping[str, Any]], DeployResult | Awaitable[DeployResult | None] | None
]
"""``fn(instance_id, info)``: take back an instance from the ``info`` its deploy recorded.

Returns its ``DeployResult`` (whose ``stop`` stops it) or None when it no longer
runs. Raises DeployError when ``info`` is not a record it understands.
"""

_log = logging.getLogger(__name__)


def _is_async_callable(fn: object) -> bool:
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


async def _call(fn: Callable[..., object], *args: object) -> object:
    """Await ``fn(*args)`` without letting a blocking ``fn`` stall the loop."""
    if _is_async_callable(fn):
        result = fn(*args)
    else:
        result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _normalise(raw: object, provider: str) -> DeployResult | None:
    if raw is None or isinstance(raw, DeployResult):
        return raw
    if isinstance(raw, tuple) and len(raw) == 2 and callable(raw[1]):
        handle, shutdown = raw
        return DeployResult(
            instance_id=str(handle), stop=lambda: shutdown(handle), info={"handle": handle}
        )
    if callable(raw):
        return DeployResult(instance_id=f"{provider}-{uuid.uuid4().hex[:12]}", stop=raw)
    raise DeployError(
        f"deploy function for provider {provider!r} returned {type(raw).__name__}; expected"
        " a DeployResult, a stop callable, a (handle, shutdown) pair or None"
    )


class DeployScripts:
    """The provider registry the master's auto-deployer starts instances through."""

    def __init__(self) -> None:
        self._functions: dict[str, DeployFunction] = {}
        self._adopters: dict[str, AdoptFunction] = {}
        self._started: dict[int, DeployResult] = {}

    def set_deploy_functions(self, provider: str, fn: DeployFunction) -> None:
        """Register (or replace) the function that starts instances for ``provider``.

        A provider object with an ``adopt`` method (``LocalProvider``) also becomes
        the provider's adopt function, unless one was set with
        :meth:`set_adopt_function`.
        """
        if not callable(fn):
            raise TypeError(f"deploy function for {provider!r} must be callable, got {fn!r}")
        self._functions[provider] = fn
        adopt = getattr(fn, "adopt", None)
        if callable(adopt):
            self._adopters.setdefault(provider, adopt)

    def set_adopt_function(self, provider: str, fn: AdoptFunction) -> None:
        """Register (or replace) how ``provider`` takes back instances after a restart."""
        if not callable(fn):
            raise TypeError(f"adopt function for {provider!r} must be callable, got {fn!r}")
        self._adopters[provider] = fn

    def get_deploy_functions(self, provider: str) -> DeployFunction:
        try:
            return self._functions[provider]
        except KeyError:
            raise UnknownProviderError(provider, self._functions) from None

    @property
    def providers(self) -> list[str]:
        return sorted(self._functions)

    async def deploy(
        self, config: DeployConfig, logger: logging.Logger | None = None
    ) -> DeployResult | None:
        """Start one instance as ``config`` describes; ``None`` if it gave no stop handle."""
        provider = config.get("provider", DEFAULT_PROVIDER)
        fn = self.get_deploy_functions(provider)
        raw = await _call(fn, logger or _log, config)
        result = _normalise(raw, provider)
        if result is not None:
            self._started[id(result)] = result
        return result

    async def adopt(
        self, provider: str, instance_id: str, info: Mapping[str, Any]
    ) -> DeployResult | None:
        """Take back a running instance an earlier Master deployed, from its recorded ``info``.

        None when ``provider`` has no adopt function or the instance is gone. An
        adopted instance is stopped by :meth:`stop` and :meth:`close` like one
        started here.
        """
        fn = self._adopters.get(provider)
        if fn is None:
            return None
        result = await _call(fn, instance_id, info)
        if result is None:
            return None
        if not isinstance(result, DeployResult):
            raise DeployError(
                f"adopt function for provider {provider!r} returned {type(result).__name__};"
                " expected a DeployResult or None"
            )
        self._started[id(result)] = result
        return result

    async def stop(self, result: DeployResult) -> None:
        """Stop an instance (the provider's stop handle decides whether a repeat is harmless).

        It is forgotten only once its stop succeeded: after a failure it may still
        run, and :meth:`close` tries again.
        """
        await _call(result.stop)
        self._started.pop(id(result), None)

    async def close(self) -> None:
        """Stop every instance started here and not stopped yet, all at once."""
        pending = list(self._started.values())
        outcomes = await asyncio.gather(*(self.stop(r) for r in pending), return_exceptions=True)
        for result, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                _log.error("stopping %s failed: %r", result.instance_id, outcome)
