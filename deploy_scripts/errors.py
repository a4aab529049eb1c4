"""Errors raised by the deploy registry and the built-in providers."""

from __future__ import annotations

from collections.abc import Iterable

from fogverse.errors import FogVerseError

__all__ = ["DeployError", "UnknownProviderError", "UnknownServiceError"]


class DeployError(FogVerseError):
    """An instance could not be started or stopped."""


class _KeyLookupError(KeyError):
    # KeyError's own __str__ shows repr(message), wrapping the text in quotes.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _known(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return listed or "none"


class UnknownProviderError(DeployError, _KeyLookupError):
    """No deploy function is registered under the provider a config names."""

    def __init__(self, provider: str, known: Iterable[str]) -> None:
        self.provider = provider
        super().__init__(
            f"no deploy function for provider {provider!r}; known providers: {_known(known)}"
            " (register one with DeployScripts.set_deploy_functions)"
        )


class UnknownServiceError(DeployError, _KeyLookupError):
    """A deploy config names a service its provider was not told how to start."""

    def __init__(self, service: str, provider: str, known: Iterable[str]) -> None:
        self.service = service
        super().__init__(
            f"service {service!r} is not declared for provider {provider!r}; declared services:"
            f" {_known(known)} (add a ServiceSpec for it)"
        )
