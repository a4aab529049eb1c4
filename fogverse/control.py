"""Control-plane messages: what stages tell the Master over the control topic.

Every message is one msgpack map, the *envelope*::

    {"kind": str, "v": int, "sender": str, "sent_at": float, "body": map, "hmac"?: bytes}

``sent_at`` is wall-clock UTC epoch seconds: the only timestamp that crosses hosts.
Versions are additive: a reader accepts any ``v >= 1``, ignores body fields it does
not know and fills missing optional ones with defaults, so stages and masters can
be upgraded one at a time. A change that cannot be additive gets a new ``kind``.

When a shared key is configured, ``hmac`` is HMAC-SHA256 over the msgpack of
``[kind, v, sender, sent_at, body]``; a reader with a key rejects messages whose
tag is missing or wrong.

Decoding never raises anything but :class:`ControlDecodeError`, whatever the
bytes, so a reader can count and drop garbage without crashing.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeGuard

import msgpack

from fogverse.errors import DecodeError

__all__ = [
    "CONTROL_VERSION",
    "KIND_AUTO_SCALE_REQUEST",
    "KIND_HEARTBEAT",
    "KIND_INSTANCE_STOPPING",
    "KIND_ROLLOUT_REQUEST",
    "MAX_CONTROL_BYTES",
    "MIN_HEARTBEAT_INTERVAL",
    "AutoScaleRequest",
    "ControlBody",
    "ControlDecodeError",
    "ControlMessage",
    "Envelope",
    "Heartbeat",
    "InstanceStopping",
    "RolloutRequest",
    "body_dict",
    "decode_control",
    "encode_control",
    "encode_envelope",
    "open_envelope",
]

CONTROL_VERSION: Final = 1
KIND_HEARTBEAT: Final = "heartbeat"
KIND_AUTO_SCALE_REQUEST: Final = "auto_scale_request"
KIND_INSTANCE_STOPPING: Final = "instance_stopping"
KIND_ROLLOUT_REQUEST: Final = "rollout_request"

MAX_CONTROL_BYTES: Final = 64 * 1024
"""Control messages are small; anything bigger is garbage or an attack."""

MIN_HEARTBEAT_INTERVAL: Final = 1e-3
"""The shortest interval a heartbeat may cover (the observer never reports less):
anything shorter turns its counts into absurd rates and /status into Infinity."""

# Bounds handed to msgpack so a hostile message cannot make the reader allocate
# much before validation rejects it.
_UNPACK_LIMITS: Final = {
    "max_str_len": 4096,
    "max_bin_len": 4096,
    "max_array_len": 256,
    "max_map_len": 256,
    "max_ext_len": 0,
}


def _unpack_limits(max_bytes: int) -> dict[str, int]:
    if max_bytes <= MAX_CONTROL_BYTES:
        return _UNPACK_LIMITS
    # Kinds that carry user data (task arguments and results) allow more; no field
    # can be longer than the message anyway.
    return {"max_str_len": max_bytes, "max_bin_len": max_bytes, "max_array_len": max_bytes,
            "max_map_len": max_bytes, "max_ext_len": 0}


class ControlDecodeError(DecodeError):
    """A control message was malformed, of an unknown kind, or failed its HMAC.

    ``reason`` is a short stable label (for counters); ``str()`` explains.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"bad control message ({reason}): {detail}")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One instance's work since its previous heartbeat.

    Counters cover the last ``interval`` seconds only, so the reader needs no
    clock agreement with the sender to turn them into rates.
    """

    instance_id: str
    service_name: str
    source_topic: str | None = None
    target_topic: str | None = None
    consumed: int = 0
    produced: int = 0
    interval: float = 1.0
    """Seconds the counters cover (a monotonic duration on the sender)."""
    processing_seconds: float | None = None
    """Time spent in process() during ``interval``; None when the sender cannot tell."""
    lag: int | None = None
    """The instance's own view of its consumer lag, when it knows it."""
    group_id: str | None = None
    node_id: str = ""
    dead_lettered: int = 0
    """Inputs sent to the dead-letter topic during ``interval``."""
    version: str = ""
    """The version of its service the instance runs (``FOGVERSE_VERSION``), if told."""


@dataclass(frozen=True, slots=True)
class AutoScaleRequest:
    """A stage asking to be scaled: its topics plus FogVerse's DeployConfig fields."""

    source_topic: str
    target_topic: str | None
    service_name: str
    provider: str = "LOCAL"
    max_instance: int | None = None
    """None when the request does not say: the declared service's limit applies."""
    min_instance: int | None = None
    extra_configs: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceStopping:
    """An instance says goodbye so the master stops counting it at once."""

    instance_id: str
    service_name: str = ""
    source_topic: str | None = None
    target_topic: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RolloutRequest:
    """``fogverse rollout``: roll a declared service out to one of its versions.

    Only names travel: the version must be declared in the master's config (or,
    for an image provider, be a tag of the declared image)."""

    service_name: str
    version: str
    strategy: str = "rolling"


ControlBody: TypeAlias = Heartbeat | AutoScaleRequest | InstanceStopping | RolloutRequest


@dataclass(frozen=True, slots=True)
class Envelope:
    """An envelope whose signature and shape are checked but whose body is not parsed yet."""

    kind: str
    version: int
    sender: str
    sent_at: float
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A decoded envelope."""

    kind: str
    version: int
    sender: str
    sent_at: float
    body: ControlBody


_KIND_OF: Final[dict[type, str]] = {
    Heartbeat: KIND_HEARTBEAT,
    AutoScaleRequest: KIND_AUTO_SCALE_REQUEST,
    InstanceStopping: KIND_INSTANCE_STOPPING,
    RolloutRequest: KIND_ROLLOUT_REQUEST,
}


def _tag(key: bytes, kind: str, version: int, sender: str, sent_at: Any, body: Any) -> bytes:
    signed = msgpack.packb([kind, version, sender, sent_at, body], use_bin_type=True)
    return hmac.new(key, signed, hashlib.sha256).digest()


def body_dict(msg: Any) -> dict[str, Any]:
    """A slotted dataclass's fields as an envelope body; fields left at None are omitted."""
    # Omitted: smaller messages, and readers default them.
    out: dict[str, Any] = {}
    for name in msg.__slots__:
        value = getattr(msg, name)
        if value is not None:
            out[name] = value
    return out


def encode_control(
    msg: ControlBody, sender: str, key: bytes | None = None, sent_at: float | None = None
) -> bytes:
    """The envelope for ``msg`` as msgpack bytes, signed when ``key`` is given."""
    return encode_envelope(_KIND_OF[type(msg)], body_dict(msg), sender, key, sent_at)


def encode_envelope(
    kind: str,
    body: dict[str, Any],
    sender: str,
    key: bytes | None = None,
    sent_at: float | None = None,
) -> bytes:
    """Any kind's envelope as msgpack bytes, signed when ``key`` is given."""
    when = time.time() if sent_at is None else float(sent_at)
    envelope: dict[str, Any] = {
        "kind": kind, "v": CONTROL_VERSION, "sender": sender, "sent_at": when, "body": body,
    }
    if key is not None:
        envelope["hmac"] = _tag(key, kind, CONTROL_VERSION, sender, when, body)
    packed: bytes = msgpack.packb(envelope, use_bin_type=True)
    return packed


def decode_control(raw: bytes | None, key: bytes | None = None) -> ControlMessage:
    """Parse and validate one control message; raise ControlDecodeError on anything wrong."""
    env = open_envelope(raw, key)
    parse = _PARSERS.get(env.kind)
    if parse is None:
        raise ControlDecodeError("unknown_kind", repr(env.kind))
    return ControlMessage(env.kind, env.version, env.sender, env.sent_at, parse(env.body))


def open_envelope(
    raw: bytes | None, key: bytes | None = None, max_bytes: int = MAX_CONTROL_BYTES
) -> Envelope:
    """Check one envelope's size, shape and signature; its body is left to the kind's parser.

    Other families of kinds (node agents, tasks) share the envelope through this.
    """
    if raw is None or len(raw) == 0:
        raise ControlDecodeError("empty", "no bytes")
    if len(raw) > max_bytes:
        raise ControlDecodeError("too_large", f"{len(raw)} bytes > {max_bytes}")
    try:
        envelope = msgpack.unpackb(raw, raw=False, **_unpack_limits(max_bytes))
    except Exception as exc:  # msgpack raises many types; all mean "not ours"
        raise ControlDecodeError("not_msgpack", repr(exc)) from None
    if not isinstance(envelope, dict):
        raise ControlDecodeError("not_envelope", f"top level is {type(envelope).__name__}")
    kind, version, sender, sent_at, body = _envelope_fields(envelope)
    if key is not None:
        # The raw sent_at, not the float: re-packing must reproduce the signed bytes.
        _check_tag(envelope.get("hmac"), key, kind, version, sender, envelope["sent_at"], body)
    return Envelope(kind, version, sender, sent_at, body)


def _envelope_fields(envelope: dict[Any, Any]) -> tuple[str, int, str, float, dict[str, Any]]:
    kind = envelope.get("kind")
    version = envelope.get("v")
    sender = envelope.get("sender", "")
    sent_at = envelope.get("sent_at")
    body = envelope.get("body")
    if not isinstance(kind, str):
        raise ControlDecodeError("not_envelope", "kind missing or not a string")
    if not _is_int(version) or version < 1:
        raise ControlDecodeError("bad_version", repr(version))
    if not isinstance(sender, str):
        raise ControlDecodeError("not_envelope", "sender is not a string")
    if not _is_number(sent_at):
        raise ControlDecodeError("not_envelope", "sent_at missing or not a number")
    if not isinstance(body, dict):
        raise ControlDecodeError("bad_body", "body missing or not a map")
    return kind, version, sender, float(sent_at), body


def _check_tag(
    tag: object, key: bytes, kind: str, version: int, sender: str, sent_at: Any, body: Any
) -> None:
    if not isinstance(tag, bytes):
        raise ControlDecodeError("bad_hmac", "message is not signed")
    if not hmac.compare_digest(tag, _tag(key, kind, version, sender, sent_at, body)):
        raise ControlDecodeError("bad_hmac", "signature does not match")


# -- field checks: small helpers so each parser reads like a schema ----------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _text(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or (default is None and not value):
        raise ControlDecodeError("bad_body", f"{name} must be a non-empty string")
    return value


def _opt_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and value):
        return value
    raise ControlDecodeError("bad_body", f"{name} must be a non-empty string or absent")


def _count(body: dict[str, Any], name: str, default: int | None = 0) -> int:
    value = body.get(name, default)
    if not _is_int(value) or value < 0:
        raise ControlDecodeError("bad_body", f"{name} must be a non-negative integer")
    return value


def _opt_count(body: dict[str, Any], name: str) -> int | None:
    return None if body.get(name) is None else _count(body, name)


def _seconds(body: dict[str, Any], name: str, default: float | None) -> float | None:
    value = body.get(name, default)
    if value is None:
        return None
    if not _is_number(value) or value < 0:
        raise ControlDecodeError("bad_body", f"{name} must be a non-negative number")
    return float(value)


def _parse_heartbeat(body: dict[str, Any]) -> Heartbeat:
    interval = _seconds(body, "interval", 1.0)
    if interval is None or interval < MIN_HEARTBEAT_INTERVAL:
        raise ControlDecodeError("bad_body",
                                 f"interval must be at least {MIN_HEARTBEAT_INTERVAL:g}s")
    return Heartbeat(
        instance_id=_text(body, "instance_id"),
        service_name=_text(body, "service_name", ""),
        source_topic=_opt_text(body, "source_topic"),
        target_topic=_opt_text(body, "target_topic"),
        consumed=_count(body, "consumed"),
        produced=_count(body, "produced"),
        interval=interval,
        processing_seconds=_seconds(body, "processing_seconds", None),
        lag=_opt_count(body, "lag"),
        group_id=_opt_text(body, "group_id"),
        node_id=_text(body, "node_id", ""),
        dead_lettered=_count(body, "dead_lettered"),
        version=_text(body, "version", ""),
    )


def _parse_request(body: dict[str, Any]) -> AutoScaleRequest:
    extra = body.get("extra_configs") or {}
    if not isinstance(extra, dict):
        raise ControlDecodeError("bad_body", "extra_configs must be a map")
    max_instance = _opt_count(body, "max_instance")
    if max_instance is not None and max_instance < 1:
        raise ControlDecodeError("bad_body", "max_instance must be at least 1")
    return AutoScaleRequest(
        source_topic=_text(body, "source_topic"),
        target_topic=_opt_text(body, "target_topic"),
        service_name=_text(body, "service_name"),
        provider=_text(body, "provider", "LOCAL") or "LOCAL",
        max_instance=max_instance,
        min_instance=_opt_count(body, "min_instance"),
        extra_configs=extra,
        group_id=_opt_text(body, "group_id"),
    )


def _parse_rollout(body: dict[str, Any]) -> RolloutRequest:
    return RolloutRequest(service_name=_text(body, "service_name"),
                          version=_text(body, "version"),
                          strategy=_text(body, "strategy", "rolling"))


def _parse_stopping(body: dict[str, Any]) -> InstanceStopping:
    return InstanceStopping(
        instance_id=_text(body, "instance_id"),
        service_name=_text(body, "service_name", ""),
        source_topic=_opt_text(body, "source_topic"),
        target_topic=_opt_text(body, "target_topic"),
        reason=_text(body, "reason", ""),
    )


_PARSERS: Final[dict[str, Callable[[dict[str, Any]], ControlBody]]] = {
    KIND_HEARTBEAT: _parse_heartbeat,
    KIND_AUTO_SCALE_REQUEST: _parse_request,
    KIND_INSTANCE_STOPPING: _parse_stopping,
    KIND_ROLLOUT_REQUEST: _parse_rollout,
}
