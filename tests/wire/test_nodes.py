"""Node and task records: every kind round-trips; impossible values are refused by reason."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest

from fogverse.control import ControlDecodeError, encode_envelope
from fogverse.wire.nodes import (
    InstanceEvent,
    InstanceStart,
    InstanceStop,
    NodeCapacity,
    decode_fleet,
    encode_fleet,
)
from fogverse.wire.tasks import (
    TaskAssignment,
    TaskCancel,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
    TaskRevoke,
    TaskStatus,
    TaskSubmit,
)

PHONE = NodeCapacity(
    node_id="phone-1", incarnation="abc", interval=2.0, tags=("phone",), cpu_cores=8,
    cpu_percent=12.5, memory_total_mb=4096.0, memory_used_mb=1024.0, gpu=True,
    battery_powered=True, battery_percent=15.0, charging=False, thermal_state="warm",
    cpu_temp_c=40.0, network_type="wifi", max_concurrent_tasks=2, task_types=("echo",),
    running_tasks=("t1",), running_instances=("i1",), profile="battery_save",
)

EVERY_KIND = [
    PHONE,
    NodeCapacity(node_id="bare", incarnation="x"),  # every sensor unknown
    InstanceStart("n", "i-1", "svc", module="app.stage", args=("--x",), env={"A": "1"}),
    InstanceStart("n", "i-2", "svc", command=("/bin/true",)),
    InstanceStop("n", "i-1", grace_s=0.5),
    InstanceEvent("n", "i-1", "exited", "svc", pid=42, exit_code=-9, detail="killed"),
    TaskSubmit("t", "echo", payload={"x": [1, 2], "b": b"\x00"}, priority=10, deadline=1e9),
    TaskCancel("t", "no longer needed"),
    TaskStatus("t", "completed", "echo", "n", attempts=2, result={"ok": True}, progress=1.0),
    TaskAssignment("n", "t", "echo", attempt=2, payload="hi", timeout_s=3.0),
    TaskProgress("n", "t", 1, 0.5, "half"),
    TaskResult("n", "t", 1, [1, "two"], 0.01),
    TaskFailure("n", "t", 1, "boom", "RuntimeError"),
    TaskRefusal("n", "t", 1, "unknown_task_type", "no handler"),
    TaskRevoke("n", "t", "unknown_task"),
]


@pytest.mark.parametrize("record", EVERY_KIND, ids=lambda r: type(r).__name__)
def test_round_trip(record: Any) -> None:
    msg = decode_fleet(encode_fleet(record, "sender-1"))
    assert msg.body == record
    assert msg.sender == "sender-1"


def test_a_signed_record_must_carry_the_right_key() -> None:
    raw = encode_fleet(TaskAssignment("n", "t", "echo"), "master", key=b"secret")
    assert decode_fleet(raw, key=b"secret").body == TaskAssignment("n", "t", "echo")
    forged = encode_fleet(TaskAssignment("n", "t", "echo"), "master", key=b"guess")
    with pytest.raises(ControlDecodeError) as caught:
        decode_fleet(forged, key=b"secret")
    assert caught.value.reason == "bad_hmac"
    with pytest.raises(ControlDecodeError):
        decode_fleet(encode_fleet(TaskAssignment("n", "t", "echo"), "master"), key=b"secret")


def _capacity(**fields: Any) -> bytes:
    body = {"node_id": "n", "incarnation": "x", **fields}
    return encode_envelope("node_capacity", body, "n")


@pytest.mark.parametrize(
    ("fields", "reason", "mentions"),
    [
        ({"battery_percent": 250}, "impossible_value", "battery_percent"),
        ({"battery_percent": -1.0}, "impossible_value", "battery_percent"),
        ({"battery_percent": math.nan}, "impossible_value", "battery_percent"),
        ({"memory_total_mb": -5.0}, "impossible_value", "memory_total_mb"),
        ({"memory_total_mb": 100.0, "memory_used_mb": 200.0}, "impossible_value", "exceeds"),
        ({"cpu_percent": 140.0}, "impossible_value", "cpu_percent"),
        ({"cpu_cores": 0}, "impossible_value", "cpu_cores"),
        ({"thermal_state": "toasty"}, "impossible_value", "thermal_state"),
        ({"cpu_temp_c": math.inf}, "impossible_value", "cpu_temp_c"),
        ({"cpu_temp_c": 500.0}, "impossible_value", "cpu_temp_c"),
        ({"charging": "yes"}, "bad_body", "charging"),
        ({"tags": "phone"}, "bad_body", "tags"),
        ({"node_id": ""}, "bad_body", "node_id"),
    ],
)
def test_impossible_capacity_is_refused_with_its_reason(
    fields: dict[str, Any], reason: str, mentions: str
) -> None:
    with pytest.raises(ControlDecodeError) as caught:
        decode_fleet(_capacity(**fields))
    assert caught.value.reason == reason
    assert mentions in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "body", "mentions"),
    [
        ("task_submit", {"task_id": "t", "task_type": "x", "priority": 11}, "priority"),
        ("task_submit", {"task_id": "t", "task_type": "x", "retry_limit": -1}, "retry_limit"),
        ("task_submit", {"task_id": "t"}, "task_type"),
        ("task_status", {"task_id": "t", "state": "lost"}, "state"),
        ("task_progress", {"node_id": "n", "task_id": "t", "fraction": 1.5}, "fraction"),
        ("task_assignment", {"node_id": "n", "task_id": "t", "task_type": "x", "attempt": 0},
         "attempt"),
        ("instance_start", {"node_id": "n", "instance_id": "i", "service_name": "s"},
         "module or command"),
        ("instance_start", {"node_id": "n", "instance_id": "i", "service_name": "s",
                            "module": "m", "env": {"A": 1}}, "env"),
    ],
)
def test_bad_bodies_name_the_field(kind: str, body: dict[str, Any], mentions: str) -> None:
    with pytest.raises(ControlDecodeError) as caught:
        decode_fleet(encode_envelope(kind, body, "x"))
    assert mentions in str(caught.value)


def test_unknown_kind_and_garbage_are_decode_errors() -> None:
    with pytest.raises(ControlDecodeError) as caught:
        decode_fleet(encode_envelope("teleport", {}, "x"))
    assert caught.value.reason == "unknown_kind"
    for raw in (b"", b"\xc1", msgpack.packb([1, 2]), None):
        with pytest.raises(ControlDecodeError):
            decode_fleet(raw)


def test_task_data_may_exceed_the_control_limit_but_not_the_task_limit() -> None:
    big = TaskResult("n", "t", 1, b"x" * 200_000)
    assert decode_fleet(encode_fleet(big, "n")).body == big
    with pytest.raises(ValueError, match="data topic"):
        encode_fleet(TaskResult("n", "t", 1, b"x" * 2_000_000), "n")
