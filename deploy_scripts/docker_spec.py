"""What a ``DOCKER`` service runs: its image, command, limits and where it is networked.

In the master's config a DOCKER service keeps the common keys (``command``, ``env``,
``min_instance``, ``max_instance``) and puts the container's own settings under
``extra_configs``::

    [services.detector]
    provider = "DOCKER"
    command = ["python3", "-m", "examples.autoscale.stage"]
    max_instance = 4
    [services.detector.extra_configs]
    image = "fogverse-stage:latest"   # required
    network = "host"                  # "host", "bridge", "none" or a network's name
    cpus = 0.5                        # CPU limit, in cores
    memory = "256m"                   # memory limit: bytes, or a number with b/k/m/g
    restart = "on-failure:3"          # no | always | unless-stopped | on-failure[:N]
    labels = { team = "vision" }      # added to the provider's own labels
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from deploy_scripts.version import ServiceVersion
from fogverse.constants import ENV_VERSION, LABEL_VERSION
from fogverse.errors import ConfigError

__all__ = ["DockerServiceSpec", "docker_service", "docker_version"]

_MEMORY = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)
_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
_NETWORK_MODES = frozenset({"host", "bridge", "none"})


@dataclass(frozen=True)
class DockerServiceSpec:
    """How to run one instance of a service as a container.

    ``command`` None runs the image's own command. ``network`` None leaves the
    engine's default (bridge); a stage on a bridge reaches a broker on the host at
    the bridge gateway, not at 127.0.0.1.
    """

    name: str
    image: str
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    network: str | None = None
    cpus: float | None = None
    memory: str | int | None = None
    restart: str = "no"
    labels: Mapping[str, str] = field(default_factory=dict)
    min_instance: int = 1
    max_instance: int = 1

    def __post_init__(self) -> None:
        where = f"DockerServiceSpec({self.name!r})"
        if not self.name:
            raise ConfigError("DockerServiceSpec.name", self.name, "a service needs a name")
        if not isinstance(self.image, str) or not self.image:
            raise ConfigError(f"{where}.image", self.image, "a DOCKER service needs an image")
        if self.command is not None:
            object.__setattr__(self, "command", tuple(str(c) for c in self.command))
        if self.cpus is not None and (isinstance(self.cpus, bool) or not self.cpus > 0):
            raise ConfigError(f"{where}.cpus", self.cpus, "expected a positive number of cores")
        if self.memory is not None and not _MEMORY.match(str(self.memory)):
            raise ConfigError(f"{where}.memory", self.memory, "expected bytes or e.g. '256m'")
        if not _RESTART.match(self.restart):
            raise ConfigError(f"{where}.restart", self.restart,
                              "expected no, always, unless-stopped or on-failure[:N]")
        if not 0 <= self.min_instance <= self.max_instance:
            raise ConfigError(f"{where}.min_instance/max_instance",
                              (self.min_instance, self.max_instance),
                              "need 0 <= min_instance <= max_instance")
        object.__setattr__(self, "env", MappingProxyType({str(k): str(v)
                                                           for k, v in self.env.items()}))
        object.__setattr__(self, "labels", MappingProxyType({str(k): str(v)
                                                              for k, v in self.labels.items()}))

    def restart_policy(self) -> dict[str, Any]:
        """The policy in the shape the Docker API takes."""
        name, _, retries = self.restart.partition(":")
        policy: dict[str, Any] = {"Name": "" if name == "no" else name}
        if retries:
            policy["MaximumRetryCount"] = int(retries)
        return policy

    def network_options(self) -> dict[str, str]:
        """``network_mode`` for the built-in modes, ``network`` for a named network."""
        if self.network is None:
            return {}
        if self.network in _NETWORK_MODES:
            return {"network_mode": self.network}
        return {"network": self.network}

    def limits(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cpus is not None:
            out["nano_cpus"] = int(self.cpus * 1e9)
        if self.memory is not None:
            out["mem_limit"] = self.memory
        return out


def docker_service(
    name: str,
    *,
    extra_configs: Mapping[str, Any],
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    min_instance: int = 1,
    max_instance: int = 1,
) -> DockerServiceSpec:
    """A spec from a master config's service entry; errors name ``services.<name>...``."""
    where = f"services.{name}.extra_configs"
    if "image" not in extra_configs:
        raise ConfigError(f"{where}.image", None, "a DOCKER service needs an image")
    labels = extra_configs.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise ConfigError(f"{where}.labels", labels, "expected a table of strings")
    cpus = extra_configs.get("cpus")
    if cpus is not None and not isinstance(cpus, int | float):
        raise ConfigError(f"{where}.cpus", cpus, "expected a number of cores")
    try:
        return DockerServiceSpec(
            name=name, image=str(extra_configs["image"]), env=env or {},
            command=None if command is None else tuple(command),
            network=extra_configs.get("network"), cpus=cpus,
            memory=extra_configs.get("memory"),
            restart=str(extra_configs.get("restart", "no")), labels=labels,
            min_instance=min_instance, max_instance=max_instance,
        )  # fmt: skip
    except ConfigError as exc:
        # Re-name the setting the way the user wrote it.
        field_name = exc.setting.rpartition(".")[2]
        why = str(exc).rpartition(": ")[2]
        raise ConfigError(f"{where}.{field_name}", exc.value, why) from None


def docker_version(spec: DockerServiceSpec, version: ServiceVersion | None) -> DockerServiceSpec:
    """``spec`` as ``version`` runs it: its image, its command (a module runs as
    ``python3 -m``), its env over the declared one."""
    if version is None:
        return spec
    command = spec.command
    if version.module is not None:
        command = ("python3", "-m", version.module)
    elif version.command is not None:
        command = version.command
    return dataclasses.replace(
        spec, image=version.image or spec.image, command=command,
        env={**spec.env, **version.env, ENV_VERSION: version.name},
        labels={**spec.labels, LABEL_VERSION: version.name},
    )  # fmt: skip
