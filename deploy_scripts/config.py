"""What a deployment asks for: FogVerse's ``DeployConfig`` and our ``ServiceSpec``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

from deploy_scripts.version import DECLARED_VERSION, IMAGE_PROVIDERS, ServiceVersion, retagged
from fogverse.constants import PROVIDER_LOCAL
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
    """A service the master may deploy, and how the built-in LOCAL provider starts it.

    The one definition of a service: the master's config loader builds these from
    the ``services`` table. ``name``, ``provider`` and the instance limits are all
    any provider needs. The built-in LOCAL provider also needs exactly one of
    ``module`` (run as ``python -m module`` with this interpreter) or ``command``
    (an argv, no shell); a deploy function you register yourself needs neither.
    ``source_topic``/``target_topic`` pin the stage the service runs (and let the
    master manage it before any request), ``group_id`` is its consumer group, and
    ``extra_configs`` are passed to the deploy function, winning over a request's.
    ``version`` names the service as declared; ``versions`` are the other versions
    it may be rolled out to (deploy_scripts.version; tables or ServiceVersion).
    """

    name: str
    provider: str = PROVIDER_LOCAL
    module: str | None = None
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    min_instance: int = 1
    max_instance: int = 1
    source_topic: str | None = None
    target_topic: str | None = None
    group_id: str | None = None
    extra_configs: Mapping[str, Any] = field(default_factory=dict)
    version: str = DECLARED_VERSION
    versions: Mapping[str, ServiceVersion] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"ServiceSpec({self.name!r})"
        if not self.name:
            raise ConfigError("ServiceSpec.name", self.name, "a service needs a name")
        if self.module is not None and self.command is not None:
            raise ConfigError(f"{where}.module/command", (self.module, self.command),
                              "give exactly one of module or command, not both")
        if self.command is not None:
            # A list would make the frozen spec mutable through the back door.
            object.__setattr__(self, "command", tuple(self.command))
            if not self.command:
                raise ConfigError(f"{where}.command", (), "empty argv")
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "extra_configs", MappingProxyType(dict(self.extra_configs)))
        if not isinstance(self.version, str) or not self.version:
            raise ConfigError(f"{where}.version", self.version, "expected a version name")
        if not isinstance(self.versions, Mapping):
            raise ConfigError(f"{where}.versions", self.versions, "expected a table of versions")
        object.__setattr__(self, "versions", MappingProxyType({
            str(n): ServiceVersion.from_record(v, str(n), f"{where}.versions.{n}")
            for n, v in self.versions.items()}))
        low, high = self.min_instance, self.max_instance
        if not (_count(low) and _count(high) and low <= high and high >= 1):
            raise ConfigError(f"{where}.min_instance/max_instance", (low, high),
                              "need 0 <= min_instance <= max_instance and max_instance >= 1")

    @property
    def launchable(self) -> bool:
        """Whether the built-in LOCAL provider knows how to start it."""
        return self.module is not None or self.command is not None

    def version_named(self, name: str) -> ServiceVersion:
        """The version called ``name``: declared, or for an image provider a tag of the image.

        ConfigError (naming the versions it knows) for any other name."""
        if name in self.versions:
            return self.versions[name]
        if name == self.version:
            return ServiceVersion(name)
        image = self.extra_configs.get("image")
        if self.provider in IMAGE_PROVIDERS and isinstance(image, str) and image:
            return ServiceVersion(name, image=retagged(image, name))
        known = ", ".join(sorted({self.version, *self.versions}))
        raise ConfigError(f"services.{self.name}.versions.{name}", None,
                          f"no such version of {self.name!r}; declared: {known}")

    def argv(self, python: str) -> list[str]:
        """The command line that starts one instance, using ``python`` for modules."""
        if self.module is not None:
            return [python, "-m", self.module]
        if self.command is None:
            raise ConfigError(f"ServiceSpec({self.name!r}).module/command", None,
                              "the built-in LOCAL provider needs exactly one of module or command"
                              " (or register your own deploy function for the provider)")
        return list(self.command)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
