"""Checks for the values of the Master's config file; each error names the key.

Shared by :mod:`master.config` and :mod:`master.service_config`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from fogverse.errors import ConfigError

__all__ = [
    "build",
    "flag",
    "no_unknown",
    "positive",
    "positive_int",
    "renamed",
    "section",
    "text",
]


def no_unknown(where: str, conf: Mapping[str, Any], known: frozenset[str]) -> None:
    if not isinstance(conf, Mapping):
        raise ConfigError(where, conf, "expected a table / mapping")
    unknown = sorted(set(conf) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{where}.{unknown[0]}", conf[unknown[0]], "unknown key",
                          hint=f"{guess}known keys: {', '.join(sorted(known))}")


def section(conf: Mapping[str, Any], name: str, schema: type) -> dict[str, Any]:
    """The table ``name`` of ``conf`` (empty if absent), every key declared in ``schema``."""
    values = conf.get(name) or {}
    no_unknown(name, values, frozenset(schema.__annotations__))
    return dict(values)


def build(cls: type[Any], name: str, values: dict[str, Any]) -> Any:
    """``cls(**values)``; what it refuses is reported against the table ``name``."""
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, values, str(exc)) from None


def text(conf: Mapping[str, Any], name: str, default: str) -> str:
    value = conf.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(name, value, "expected a non-empty string")
    return value


def flag(conf: Mapping[str, Any], name: str, default: bool) -> bool:
    value = conf.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(name, value, "expected true or false")
    return value


def positive(conf: Mapping[str, Any], name: str, default: float) -> float:
    value = conf.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(name, value, "expected a positive number of seconds")
    return float(value)


def positive_int(conf: Mapping[str, Any], name: str, default: int) -> int:
    value = conf.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(name, value, "expected a positive integer")
    return value


def renamed(where: str, exc: ConfigError) -> ConfigError:
    """``exc`` naming its setting as the user wrote it: under ``where`` in the file."""
    why = str(exc)[len(f"invalid setting {exc.setting}={exc.value!r}: "):]
    return ConfigError(f"{where}.{exc.setting.split(').', 1)[-1]}", exc.value, why)
