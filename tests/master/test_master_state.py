"""State records: round trips, signatures, and garbage that is refused with a reason."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from master.plans import StagePlan
from master.state import StateStore
from master.state_records import (
    DeployedInstance,
    StateRecordError,
    decode_record,
    deployed_body,
    deployed_from_body,
    encode_record,
    msgpack_safe,
    plan_body,
    plan_from_body,
)

KEY = b"secret"
PLAN = StagePlan(("a", None), "svc", "REC", 0, 5, "g", {"zone": "a"})


def test_plan_and_instance_round_trip_signed_and_unsigned() -> None:
    for control_key in (None, KEY):
        raw = encode_record("ns/a->-", "plan", plan_body(PLAN), control_key)
        kind, body = decode_record("ns/a->-", raw, control_key)
        assert kind == "plan" and plan_from_body(body) == PLAN
    d = DeployedInstance("svc-1", ("a", "b"), "svc", "LOCAL", {"pid": 12, "pgid": 12})
    assert deployed_from_body(deployed_body(d)) == d


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not_msgpack"), (b"\xc1", "not_msgpack"), (msgpack.packb([1]), "not_a_record"),
        (msgpack.packb({"v": 2, "p": "text"}), "not_a_record"),
        (msgpack.packb({"v": 2, "p": msgpack.packb(["reboot", {}])}), "not_a_record"),
    ],
)
def test_garbage_is_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(StateRecordError) as info:
        decode_record("ns/a->b", raw, None)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "change",
    [{"source": ["a"]}, {"source": "a b"}, {"source": None}, {"target": 3}, {"min": -1},
     {"max": 0}, {"min": 3, "max": 2}, {"max": True}, {"max": 10**9}, {"service": ""},
     {"provider": None}, {"extra": [1]}, {"group": {}}],
)
def test_a_plan_with_a_bad_field_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(StateRecordError) as info:
        plan_from_body({**plan_body(PLAN), **change})
    assert info.value.reason == "bad_field"


def test_with_a_key_unsigned_forged_and_moved_records_are_refused() -> None:
    signed = encode_record("ns/a->-", "plan", plan_body(PLAN), KEY)
    cases = {
        "unsigned": encode_record("ns/a->-", "plan", plan_body(PLAN), None),
        "forged": encode_record("ns/a->-", "plan", plan_body(PLAN), b"other"),
    }
    for reason, raw in cases.items():
        with pytest.raises(StateRecordError) as info:
            decode_record("ns/a->-", raw, KEY)
        assert info.value.reason == reason
    with pytest.raises(StateRecordError, match="forged"):
        decode_record("ns/x->-", signed, KEY)  # a valid record under another key


def test_the_store_counts_and_skips_bad_records_and_keeps_good_ones() -> None:
    store = StateStore("unused:1", "ns", "state")
    good = encode_record("ns/a->-", "plan", plan_body(PLAN), None)
    bad = encode_record("ns/b->-", "plan", {**plan_body(PLAN), "source": ["b"]}, None)
    inst = DeployedInstance("svc-1", ("a", None), "svc", "REC", {})
    wrong_kind = encode_record("ns/instance/x", "plan", plan_body(PLAN), None)
    state = store.parse({
        "ns/a->-": good, "ns/b->-": bad, "ns/c->-": b"\xc1",
        "ns/instance/svc-1": encode_record("ns/instance/svc-1", "instance",
                                           deployed_body(inst), None),
        "ns/instance/x": wrong_kind,
    })
    assert state.plans == [PLAN] and state.instances == [inst]
    assert store.rejected == {"bad_field": 1, "not_msgpack": 1, "not_a_record": 1}


def test_only_what_msgpack_can_store_of_a_providers_info_is_recorded() -> None:
    info = {"pid": 7, "argv": ["python", "-m", "x"], "handle": object(), 3: "odd key"}
    assert msgpack_safe(info) == {"pid": 7, "argv": ["python", "-m", "x"]}
