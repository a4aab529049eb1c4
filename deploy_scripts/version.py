"""What a *version* of a service is, and how a provider starts one.

A :class:`ServiceVersion` is a name plus what differs from the service as declared:
a ``module`` or ``command`` and ``env`` for the process providers (LOCAL, AGENT),
an ``image`` for the container providers (DOCKER, KUBERNETES, kept under the
spec's ``extra_configs["image"]`` as DOCKER always did), and the ``needs`` a
node must meet to run it. :meth:`ServiceVersion.apply` turns a declared
:class:`~deploy_scripts.config.ServiceSpec` into the spec of that version, so a
provider starts any version without knowing about rollouts:

* the master puts the version into the ``DeployConfig`` it hands the deploy
  function (:func:`with_version`, under ``extra_configs[EXTRA_VERSION]``, a
  plain msgpack-safe record);
* the provider starts :func:`versioned_spec` ``(its declared spec, config)``
  instead of the declared spec itself;
* the started instance sees its version's name in ``FOGVERSE_VERSION``, and the
  master records it in ``DeployResult.info[INFO_VERSION]`` (and so in its state
  topic), which tells it after a restart which instance runs which version.

A service declares its versions in the master's config::

    [services.detector.versions.v2]
    module = "detector.v2"          # LOCAL / AGENT: or command = [...]
    env = { MODEL = "yolo-v9" }     # merged over the service's env
    image = "detector:2.0"          # DOCKER / KUBERNETES
    needs = { cpu = 1.0, memory_mb = 512, gpu = false, min_battery = 30,
              max_thermal = "warm" }

The service as declared is the version named by ``ServiceSpec.version``
(``"declared"`` unless set). For an image provider a name that is not declared
is read as a tag of the declared image (``detector:1.0`` -> ``detector:<name>``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from fogverse.constants import (
    ENV_VERSION,
    EXTRA_VERSION,
    INFO_VERSION,
    PROVIDER_DOCKER,
    PROVIDER_KUBERNETES,
)
from fogverse.errors import ConfigError

if TYPE_CHECKING:
    from deploy_scripts.config import DeployConfig, ServiceSpec

__all__ = [
    "DECLARED_VERSION",
    "IMAGE_PROVIDERS",
    "THERMAL_LEVELS",
    "ServiceVersion",
    "VersionNeeds",
    "instance_version",
    "version_of",
    "versioned_spec",
    "with_version",
]

DECLARED_VERSION: Final = "declared"
"""The name of a service's version as declared, unless its ``version`` says another."""

IMAGE_PROVIDERS: Final = frozenset({PROVIDER_DOCKER, PROVIDER_KUBERNETES})
"""Providers whose version is an image: an undeclared version name is an image tag."""

THERMAL_LEVELS: Final = ("normal", "warm", "hot", "critical")
"""Thermal states from coolest to hottest, as node agents report them."""

_NEEDS_KEYS = frozenset({"cpu", "memory_mb", "gpu", "min_battery", "max_thermal"})
_VERSION_KEYS = frozenset({"module", "command", "env", "image", "needs"})
_MAX_NAME = 128


@dataclass(frozen=True)
class VersionNeeds:
    """What a node must offer to run one instance of a version.

    ``cpu`` free cores and ``memory_mb`` free memory; ``gpu`` a GPU;
    ``min_battery`` a battery at least this full (percent; a node on mains
    power always qualifies); ``max_thermal`` no hotter than this state.
    """

    cpu: float = 0.0
    memory_mb: int = 0
    gpu: bool = False
    min_battery: float | None = None
    max_thermal: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.cpu, bool) or not isinstance(self.cpu, int | float) \
                or not math.isfinite(self.cpu) or self.cpu < 0:
            raise ConfigError("needs.cpu", self.cpu, "expected a number of cores >= 0")
        if isinstance(self.memory_mb, bool) or not isinstance(self.memory_mb, int) \
                or self.memory_mb < 0:
            raise ConfigError("needs.memory_mb", self.memory_mb, "expected whole MiB >= 0")
        if not isinstance(self.gpu, bool):
            raise ConfigError("needs.gpu", self.gpu, "expected true or false")
        battery = self.min_battery
        if battery is not None and (isinstance(battery, bool)
                                    or not isinstance(battery, int | float)
                                    or not 0 <= battery <= 100):
            raise ConfigError("needs.min_battery", battery, "expected a percentage 0..100")
        if self.max_thermal is not None and self.max_thermal not in THERMAL_LEVELS:
            raise ConfigError("needs.max_thermal", self.max_thermal,
                              f"expected one of {', '.join(THERMAL_LEVELS)}")
        object.__setattr__(self, "cpu", float(self.cpu))

    @property
    def any(self) -> bool:
        """Whether it asks for anything at all."""
        return self != VersionNeeds()

    def to_record(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, 0, False)}

    @classmethod
    def from_record(cls, raw: object) -> VersionNeeds:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError("needs", raw, "expected a table")
        unknown = set(raw) - _NEEDS_KEYS
        if unknown:
            raise ConfigError(f"needs.{sorted(map(str, unknown))[0]}", None,
                              f"unknown need; known: {', '.join(sorted(_NEEDS_KEYS))}")
        return cls(**{str(k): v for k, v in raw.items()})


@dataclass(frozen=True)
class ServiceVersion:
    """One version of a service: a name and what it changes in the declared spec.

    ``module`` and ``command`` replace the declared ones (give at most one);
    ``env`` is merged over the declared env; ``image`` replaces the declared
    image of a container provider. A version with none of them is the service
    as declared, under another name.
    """

    name: str
    module: str | None = None
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    needs: VersionNeeds = field(default_factory=VersionNeeds)

    def __post_init__(self) -> None:
        where = f"version {self.name!r}"
        if not isinstance(self.name, str) or not 0 < len(self.name) <= _MAX_NAME \
                or not self.name.isprintable() or "/" in self.name:
            raise ConfigError("version.name", self.name,
                              f"a version needs a printable name of 1..{_MAX_NAME} characters,"
                              " no '/'")
        if self.module is not None and self.command is not None:
            raise ConfigError(f"{where}.module/command", (self.module, self.command),
                              "give at most one of module or command")
        if self.module is not None and (not isinstance(self.module, str) or not self.module):
            raise ConfigError(f"{where}.module", self.module, "expected a module name")
        if self.command is not None:
            if isinstance(self.command, str) or not self.command:
                raise ConfigError(f"{where}.command", self.command,
                                  "expected a non-empty list of strings")
            object.__setattr__(self, "command", tuple(str(c) for c in self.command))
        if self.image is not None and (not isinstance(self.image, str) or not self.image):
            raise ConfigError(f"{where}.image", self.image, "expected an image reference")
        if not isinstance(self.env, Mapping):
            raise ConfigError(f"{where}.env", self.env, "expected a table of strings")
        object.__setattr__(self, "env", MappingProxyType({str(k): str(v)
                                                          for k, v in self.env.items()}))
        if not isinstance(self.needs, VersionNeeds):
            raise ConfigError(f"{where}.needs", self.needs, "expected VersionNeeds")

    def apply(self, spec: ServiceSpec) -> ServiceSpec:
        """``spec`` as this version runs it (a new spec; ``spec`` is unchanged)."""
        changes: dict[str, Any] = {
            "env": {**spec.env, **self.env, ENV_VERSION: self.name},
            "version": self.name,
        }
        if self.module is not None:
            changes.update(module=self.module, command=None)
        elif self.command is not None:
            changes.update(module=None, command=self.command)
        if self.image is not None:
            changes["extra_configs"] = {**spec.extra_configs, "image": self.image}
        return dataclasses.replace(spec, **changes)

    def to_record(self) -> dict[str, Any]:
        """Plain values only (msgpack-safe): how it travels in a DeployConfig and is stored."""
        record: dict[str, Any] = {"name": self.name}
        if self.module is not None:
            record["module"] = self.module
        if self.command is not None:
            record["command"] = list(self.command)
        if self.env:
            record["env"] = dict(self.env)
        if self.image is not None:
            record["image"] = self.image
        if self.needs.any:
            record["needs"] = self.needs.to_record()
        return record

    @classmethod
    def from_record(cls, raw: object, name: str | None = None, where: str = "version") -> \
            ServiceVersion:
        """A version from a record or a config table; ConfigError names the bad key.

        ``name`` (a config table's key) wins over a ``name`` inside ``raw``."""
        if isinstance(raw, ServiceVersion):
            return raw if name is None or raw.name == name else dataclasses.replace(raw, name=name)
        if not isinstance(raw, Mapping):
            raise ConfigError(where, raw, "expected a table")
        body = dict(raw)
        given = body.pop("name", None)
        unknown = set(body) - _VERSION_KEYS
        if unknown:
            raise ConfigError(f"{where}.{sorted(map(str, unknown))[0]}", None,
                              f"unknown key; known: {', '.join(sorted(_VERSION_KEYS))}")
        try:
            return cls(name=name if name is not None else given, module=body.get("module"),
                       command=body.get("command"), env=body.get("env") or {},
                       image=body.get("image"), needs=VersionNeeds.from_record(body.get("needs")))
        except ConfigError as exc:
            setting = exc.setting
            if setting.startswith("needs."):
                key = setting
            elif setting == "version.name":
                key = "name"
            else:
                key = setting.rsplit(".", 1)[-1]
            why = str(exc).rpartition(": ")[2]
            raise ConfigError(f"{where}.{key}", exc.value, why) from None


def retagged(image: str, tag: str) -> str:
    """``image`` with its tag replaced by ``tag`` (a registry port is not a tag)."""
    repo = image.split("@", 1)[0]
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash:
        repo = repo[:colon]
    return f"{repo}:{tag}"


def with_version(config: DeployConfig, version: ServiceVersion | None) -> DeployConfig:
    """``config`` asking for ``version`` (a copy); None asks for the declared service."""
    extra = dict(config.get("extra_configs") or {})
    extra.pop(EXTRA_VERSION, None)
    if version is not None:
        extra[EXTRA_VERSION] = version.to_record()
    out: DeployConfig = {**config, "extra_configs": extra}
    return out


def version_of(config: DeployConfig) -> ServiceVersion | None:
    """The version ``config`` asks for; None for the service as declared."""
    raw = (config.get("extra_configs") or {}).get(EXTRA_VERSION)
    if raw is None:
        return None
    return ServiceVersion.from_record(raw, where=f"extra_configs.{EXTRA_VERSION}")


def versioned_spec(spec: ServiceSpec, config: DeployConfig) -> ServiceSpec:
    """The spec a provider starts for ``config``: ``spec`` with the asked version applied."""
    version = version_of(config)
    return spec if version is None else version.apply(spec)


def instance_version(info: Mapping[str, Any], default: str = DECLARED_VERSION) -> str:
    """The version an instance runs, from its ``DeployResult.info`` (or its stored record)."""
    value = info.get(INFO_VERSION)
    return value if isinstance(value, str) and value else default
