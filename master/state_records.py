"""The master's state records: what they hold, how they are signed, and their checks.

Three kinds, one compacted topic. A *rollout* (key ``<namespace>/rollout/<service>``)
is the latest rollout of a service (master.rollout.model). A *plan* (key
``<namespace>/<stage>``) is what
the master may do for a stage; an *instance* (key ``<namespace>/instance/<id>``)
is one instance it deployed, with what its provider needs to find it again, so
a restarted master adopts it instead of deploying a duplicate. Stage names
never contain ``/`` (topic names cannot), so the keys never collide.

A record is ``{"v": 2, "p": <msgpack of [kind, body]>, "hmac"?: bytes}``. With
a control key, ``hmac`` is HMAC-SHA256 over the record's key and ``p``, so a
record can neither be forged nor moved to another key; unsigned or forged
records are then refused. Every field is checked for type and range before
anything acts on it: one bad record is refused and counted, never a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from master.plans import StagePlan

__all__ = [
    "DeployedInstance",
    "StateRecordError",
    "decode_record",
    "deployed_body",
    "deployed_from_body",
    "encode_record",
    "msgpack_safe",
    "plan_body",
    "plan_from_body",
]

VERSION = 2
KIND_PLAN = "plan"
KIND_INSTANCE = "instance"
KIND_ROLLOUT = "rollout"
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_MAX_TEXT = 1024
_MAX_INSTANCES = 100_000


class StateRecordError(ValueError):
    """A state record the master will not use; ``reason`` is a short label for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class DeployedInstance:
    """An instance this master deployed, as the state topic remembers it."""

    instance_id: str
    stage: tuple[str, str | None]
    service_name: str
    provider: str
    info: Mapping[str, Any] = field(default_factory=dict)
    """The provider's own details (``DeployResult.info``), msgpack-safe."""


def _tag(control_key: bytes, record_key: str, payload: bytes) -> bytes:
    return hmac.new(control_key, record_key.encode() + b"\0" + payload, hashlib.sha256).digest()


def encode_record(
    record_key: str, kind: str, body: Mapping[str, Any], control_key: bytes | None
) -> bytes:
    payload: bytes = msgpack.packb([kind, dict(body)], use_bin_type=True)
    record: dict[str, Any] = {"v": VERSION, "p": payload}
    if control_key:
        record["hmac"] = _tag(control_key, record_key, payload)
    packed: bytes = msgpack.packb(record, use_bin_type=True)
    return packed


def decode_record(
    record_key: str, raw: bytes, control_key: bytes | None
) -> tuple[str, dict[str, Any]]:
    """(kind, body) of a record, checked against ``control_key``; StateRecordError if bad."""
    try:
        record = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        raise StateRecordError("not_msgpack", repr(exc)) from None
    if isinstance(record, dict) and record.get("v") == 1:
        # Written before records were versioned by kind: an unsigned plan.
        _check_signed(control_key, None, record_key, b"")
        return KIND_PLAN, record
    if not isinstance(record, dict) or record.get("v") != VERSION:
        raise StateRecordError("not_a_record", "not a versioned state record")
    payload = record.get("p")
    if not isinstance(payload, bytes):
        raise StateRecordError("not_a_record", "no payload")
    _check_signed(control_key, record.get("hmac"), record_key, payload)
    try:
        kind, body = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:
        raise StateRecordError("not_a_record", f"payload: {exc!r}") from None
    if kind not in (KIND_PLAN, KIND_INSTANCE, KIND_ROLLOUT) or not isinstance(body, dict):
        raise StateRecordError("not_a_record", f"unknown kind {kind!r}")
    return kind, body


def _check_signed(
    control_key: bytes | None, tag: object, record_key: str, payload: bytes
) -> None:
    if not control_key:
        return
    if tag is None:
        raise StateRecordError("unsigned", "the master has a control key; the record is unsigned")
    if not isinstance(tag, bytes) or not hmac.compare_digest(
            tag, _tag(control_key, record_key, payload)):
        raise StateRecordError("forged", "signature does not match")


# -- bodies -----------------------------------------------------------------------------


def plan_body(plan: StagePlan) -> dict[str, Any]:
    return {"source": plan.stage[0], "target": plan.stage[1], "service": plan.service_name,
            "provider": plan.provider, "min": plan.min_instance, "max": plan.max_instance,
            "group": plan.group_id, "extra": dict(plan.extra_configs)}


def plan_from_body(body: Mapping[str, Any]) -> StagePlan:
    """A plan whose every field has the right type and range; StateRecordError if not."""
    low, high = _count(body, "min"), _count(body, "max")
    if not (low <= high and high >= 1):
        raise StateRecordError("bad_field", f"need 0 <= min <= max and max >= 1, got {low}, {high}")
    extra = body.get("extra") or {}
    if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
        raise StateRecordError("bad_field", "extra must be a map with string keys")
    return StagePlan(
        stage=(_topic(body, "source"), _optional_topic(body, "target")),
        service_name=_text(body, "service"), provider=_text(body, "provider"),
        min_instance=low, max_instance=high, group_id=_optional_text(body, "group"),
        extra_configs=extra,
    )


def msgpack_safe(info: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a provider's ``info`` that msgpack can store (others dropped)."""
    kept = {}
    for key, value in info.items():
        try:
            msgpack.packb(value, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            continue
        if isinstance(key, str):
            kept[key] = value
    return kept


def deployed_body(d: DeployedInstance) -> dict[str, Any]:
    return {"id": d.instance_id, "source": d.stage[0], "target": d.stage[1],
            "service": d.service_name, "provider": d.provider, "info": dict(d.info)}


def deployed_from_body(body: Mapping[str, Any]) -> DeployedInstance:
    info = body.get("info") or {}
    if not isinstance(info, dict) or not all(isinstance(k, str) for k in info):
        raise StateRecordError("bad_field", "info must be a map with string keys")
    return DeployedInstance(
        instance_id=_text(body, "id"),
        stage=(_topic(body, "source"), _optional_topic(body, "target")),
        service_name=_text(body, "service"), provider=_text(body, "provider"), info=info,
    )


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
        raise StateRecordError("bad_field", f"{name} must be a non-empty string, got {value!r:.80}")
    return value


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _text(body, name)


def _topic(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _TOPIC.fullmatch(value):
        raise StateRecordError("bad_field", f"{name} must be a topic name, got {value!r:.80}")
    return value


def _optional_topic(body: Mapping[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _topic(body, name)


def _count(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INSTANCES:
        raise StateRecordError("bad_field", f"{name} must be an instance count, got {value!r:.80}")
    return value
