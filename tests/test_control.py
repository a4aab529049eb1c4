"""Control messages: round trips, versioning, HMAC, and garbage that must never crash."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogverse.control import (
    MAX_CONTROL_BYTES,
    AutoScaleRequest,
    ControlDecodeError,
    Heartbeat,
    InstanceStopping,
    decode_control,
    encode_control,
)

HEARTBEAT = Heartbeat(
    instance_id="i-1", service_name="svc", source_topic="a", target_topic="b",
    consumed=10, produced=9, interval=1.02, processing_seconds=0.5, lag=3,
    group_id="g", node_id="n1",
)
REQUEST = AutoScaleRequest(
    source_topic="a", target_topic="b", service_name="svc", provider="LOCAL",
    max_instance=3, min_instance=1, extra_configs={"test": "halo"}, group_id="g",
)
STOPPING = InstanceStopping(instance_id="i-1", service_name="svc", source_topic="a",
                            target_topic="b", reason="scale-in")


@pytest.mark.parametrize("body", [HEARTBEAT, REQUEST, STOPPING])
def test_round_trip(body: object) -> None:
    raw = encode_control(body, sender="i-1", sent_at=1700000000.5)  # type: ignore[arg-type]
    msg = decode_control(raw)
    assert msg.body == body
    assert msg.sender == "i-1"
    assert msg.sent_at == 1700000000.5
    assert msg.version == 1


def test_optional_fields_default_when_absent() -> None:
    raw = msgpack.packb({"kind": "heartbeat", "v": 1, "sender": "x", "sent_at": 1,
                         "body": {"instance_id": "x"}})
    hb = decode_control(raw).body
    assert hb == Heartbeat(instance_id="x", service_name="")


def test_newer_version_with_unknown_fields_is_read() -> None:
    raw = msgpack.packb({"kind": "heartbeat", "v": 7, "sender": "x", "sent_at": 1.0,
                         "body": {"instance_id": "x", "consumed": 4, "gpu_temp": 71},
                         "future": True})
    msg = decode_control(raw)
    assert msg.version == 7
    assert isinstance(msg.body, Heartbeat) and msg.body.consumed == 4


def test_hmac_accepts_signed_and_rejects_tampered_or_unsigned() -> None:
    key = b"secret"
    raw = encode_control(HEARTBEAT, "i-1", key=key)
    assert decode_control(raw, key=key).body == HEARTBEAT
    envelope = msgpack.unpackb(raw)
    envelope["body"]["consumed"] = 10_000
    with pytest.raises(ControlDecodeError) as bad:
        decode_control(msgpack.packb(envelope), key=key)
    assert bad.value.reason == "bad_hmac"
    with pytest.raises(ControlDecodeError) as unsigned:
        decode_control(encode_control(HEARTBEAT, "i-1"), key=key)
    assert unsigned.value.reason == "bad_hmac"
    with pytest.raises(ControlDecodeError):
        decode_control(raw, key=b"other")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"\xc1", "not_msgpack"),
        (b"not msgpack at all {", "not_msgpack"),
        (msgpack.packb([1, 2, 3]), "not_envelope"),
        (msgpack.packb({"kind": 3, "v": 1, "sent_at": 1, "body": {}}), "not_envelope"),
        (msgpack.packb({"kind": "heartbeat", "v": 0, "sent_at": 1, "body": {}}), "bad_version"),
        (msgpack.packb({"kind": "heartbeat", "v": True, "sent_at": 1, "body": {}}),
         "bad_version"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": "now", "body": {}}),
         "not_envelope"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": float("nan"), "body": {}}),
         "not_envelope"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1, "body": []}), "bad_body"),
        (msgpack.packb({"kind": "reboot", "v": 1, "sent_at": 1, "body": {}}), "unknown_kind"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1, "body": {}}), "bad_body"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1,
                        "body": {"instance_id": "x", "consumed": -1}}), "bad_body"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1,
                        "body": {"instance_id": "x", "interval": 0}}), "bad_body"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1,
                        "body": {"instance_id": "x", "interval": 1e-300}}), "bad_body"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1,
                        "body": {"instance_id": "x", "interval": 0.0009}}), "bad_body"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1,
                        "body": {"instance_id": "x", "lag": 1.5}}), "bad_body"),
        (msgpack.packb({"kind": "auto_scale_request", "v": 1, "sent_at": 1,
                        "body": {"source_topic": "a", "service_name": "s",
                                 "max_instance": 0}}), "bad_body"),
        (msgpack.packb({"kind": "auto_scale_request", "v": 1, "sent_at": 1,
                        "body": {"source_topic": "a", "service_name": "s",
                                 "extra_configs": [1]}}), "bad_body"),
        (b"\x00" * (MAX_CONTROL_BYTES + 1), "too_large"),
        (msgpack.packb({"kind": "heartbeat", "v": 1, "sent_at": 1,
                        "body": {"instance_id": "x" * 10_000}}), "not_msgpack"),
    ],
)
def test_garbage_is_a_control_decode_error(raw: bytes | None, reason: str) -> None:
    with pytest.raises(ControlDecodeError) as info:
        decode_control(raw)
    assert info.value.reason == reason
    assert reason in str(info.value)


@settings(max_examples=500)
@given(st.binary(max_size=512))
def test_random_bytes_never_raise_anything_else(raw: bytes) -> None:
    with contextlib.suppress(ControlDecodeError):
        decode_control(raw)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500)
@given(st.sampled_from(["heartbeat", "auto_scale_request", "instance_stopping", "x"]),
       st.dictionaries(st.sampled_from(
           ["instance_id", "service_name", "source_topic", "target_topic", "consumed",
            "produced", "interval", "processing_seconds", "lag", "max_instance",
            "min_instance", "extra_configs", "reason", "group_id", "node_id"]),
           json_like, max_size=8))
def test_random_bodies_decode_or_fail_cleanly(kind: str, body: dict[str, object]) -> None:
    raw = msgpack.packb({"kind": kind, "v": 1, "sender": "s", "sent_at": 1.0, "body": body})
    try:
        msg = decode_control(raw)
    except ControlDecodeError:
        return
    assert msg.kind == kind


def test_a_request_that_does_not_say_max_instance_decodes_without_one() -> None:
    raw = msgpack.packb({"kind": "auto_scale_request", "v": 1, "sender": "s", "sent_at": 1.0,
                         "body": {"source_topic": "a", "service_name": "svc"}})
    body = decode_control(raw).body
    assert isinstance(body, AutoScaleRequest) and body.max_instance is None
