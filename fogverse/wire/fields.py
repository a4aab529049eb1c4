"""Checks for the fields of control-message bodies: each parser reads like a schema.

Every check raises :class:`~fogverse.control.ControlDecodeError` naming the field:
``bad_body`` for a wrong type or a missing field, ``impossible_value`` for a value
of the right type that no real device or task can have (battery 250 %, memory
used above the total, NaN). Readers count the reasons, so a noisy sender shows up.
"""

from __future__ import annotations

import math
from typing import Any, Final

from fogverse.control import ControlDecodeError, _is_int, _is_number

__all__ = [
    "IMPOSSIBLE",
    "as_map",
    "flag",
    "names",
    "opt_flag",
    "opt_number",
    "opt_text",
    "positive_int",
    "text",
]

IMPOSSIBLE: Final = "impossible_value"


def _bad(name: str, what: str) -> ControlDecodeError:
    return ControlDecodeError("bad_body", f"{name} must be {what}")


def text(body: dict[str, Any], name: str, default: str | None = None) -> str:
    """A string; required and non-empty unless ``default`` is given."""
    value = body.get(name, default)
    if not isinstance(value, str) or (default is None and not value):
        raise _bad(name, "a non-empty string")
    return value


def opt_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and value):
        return value
    raise _bad(name, "a non-empty string or absent")


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise _bad(name, "true or false")
    return value


def opt_flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise _bad(name, "true, false or absent")


def positive_int(body: dict[str, Any], name: str, default: int | None = None,
                 low: int = 1) -> int:
    value = body.get(name, default)
    if not _is_int(value):
        raise _bad(name, "an integer")
    if value < low:
        raise ControlDecodeError(IMPOSSIBLE, f"{name} = {value} is below {low}")
    return value


def opt_number(
    body: dict[str, Any], name: str, low: float = 0.0, high: float = math.inf
) -> float | None:
    """A finite number within ``[low, high]``, or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise ControlDecodeError(IMPOSSIBLE, f"{name} = {value} is not a finite number")
    if not _is_number(value):
        raise _bad(name, "a number")
    if not low <= value <= high:
        raise ControlDecodeError(IMPOSSIBLE, f"{name} = {value} is outside {low:g}..{high:g}")
    return float(value)


def names(body: dict[str, Any], name: str) -> tuple[str, ...]:
    """A list of non-empty strings (absent: empty)."""
    value = body.get(name, ())
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise _bad(name, "a list of non-empty strings")
    return tuple(value)


def as_map(body: dict[str, Any], name: str) -> dict[str, str]:
    """A map of strings to strings (absent: empty)."""
    value = body.get(name) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(name, "a map of strings to strings")
    return dict(value)
