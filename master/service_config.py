"""The ``services`` table of the Master's config file: what it may deploy, and how."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from deploy_scripts import ServiceSpec
from deploy_scripts.version import DECLARED_VERSION
from fogverse.constants import DEFAULT_PROVIDER
from fogverse.errors import ConfigError
from master.config_values import no_unknown, renamed

__all__ = ["services", "with_cwd"]


def services(raw: Mapping[str, Any]) -> dict[str, ServiceSpec]:
    if not isinstance(raw, Mapping):
        raise ConfigError("services", raw, "expected a table of services")
    return {str(name): _service(str(name), conf) for name, conf in raw.items()}


_SERVICE_KEYS = frozenset(f.name for f in fields(ServiceSpec)) - {"name"}


def _service(name: str, conf: Mapping[str, Any]) -> ServiceSpec:
    where = f"services.{name}"
    no_unknown(where, conf, _SERVICE_KEYS)
    command = conf.get("command")
    if command is not None and (not isinstance(command, list | tuple) or not command):
        raise ConfigError(f"{where}.command", command, "expected a non-empty list of strings")
    for key in ("env", "extra_configs", "versions"):
        if not isinstance(conf.get(key) or {}, Mapping):
            raise ConfigError(f"{where}.{key}", conf[key], "expected a table / mapping")
    for key in ("provider", "module", "cwd", "source_topic", "target_topic", "group_id"):
        value = conf.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{where}.{key}", value, "expected a non-empty string")
    try:
        return ServiceSpec(
            name=name, provider=conf.get("provider", DEFAULT_PROVIDER), module=conf.get("module"),
            command=None if command is None else tuple(str(c) for c in command),
            env={str(k): str(v) for k, v in (conf.get("env") or {}).items()},
            cwd=conf.get("cwd"), min_instance=conf.get("min_instance", 1),
            max_instance=conf.get("max_instance", 1), source_topic=conf.get("source_topic"),
            target_topic=conf.get("target_topic"), group_id=conf.get("group_id"),
            extra_configs=dict(conf.get("extra_configs") or {}),
            version=conf.get("version", DECLARED_VERSION), versions=conf.get("versions") or {},
        )
    except ConfigError as exc:
        # Name the key as the user wrote it, not the dataclass.
        raise renamed(where, exc) from None


def with_cwd(svc: ServiceSpec, base: Path) -> ServiceSpec:
    cwd = str((base / svc.cwd).resolve()) if svc.cwd else str(base)
    return replace(svc, cwd=cwd)
