"""What a deployment asks for: FogVerse's ``DeployConfig`` and our ``ServiceSpec``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

from fogverse.errors import ConfigError

__all__ = ["DeployConfig", "ServiceSpec"]


class DeployConfig(TypedDict, total=False):
    """The ``topic_configs`` a stage sends in its auto-scale request (FogVerse's shape).

    ``extra_configs`` is free-form for user providers; the LOCAL provider reads
    ``env`` (a mapping added to the child's environment) and ``args`` (a list of
    strings appended to the command) from it.
    """

    provider: str
    service_name: str
    max_instance: int
    min_instance: int
    extra_configs: dict[str, Any]


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one instance of a service on a host.

    Exactly one of ``module`` (run as ``python -m module`` with this interpreter)
    or ``command`` (an argv, no shell) is given.
    """

    name: str
    provider: str = "LOCAL"
    module: str | None = None
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    min_instance: int = 1
    max_instance: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("ServiceSpec.name", self.name, "a service needs a name")
        if (self.module is None) == (self.command is None):
            raise ConfigError(
                f"ServiceSpec({self.name!r}).module/command",
                (self.module, self.command),
                "give exactly one of module or command",
            )
        if self.command is not None:
            # A list would make the frozen spec mutable through the back door.
            object.__setattr__(self, "command", tuple(self.command))
            if not self.command:
                raise ConfigError(f"ServiceSpec({self.name!r}).command", (), "empty argv")
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        if not 0 <= self.min_instance <= self.max_instance:
            raise ConfigError(
                f"ServiceSpec({self.name!r}).min_instance/max_instance",
                (self.min_instance, self.max_instance),
                "need 0 <= min_instance <= max_instance",
            )

    def argv(self, python: str) -> list[str]:
        """The command line that starts one instance, using ``python`` for modules."""
        if self.module is not None:
            return [python, "-m", self.module]
        assert self.command is not None  # __post_init__ guarantees one of the two
        return list(self.command)
