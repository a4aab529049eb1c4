"""Node records on the wire, and the one codec for every node and task kind.

Agents send :class:`NodeCapacity` and :class:`InstanceEvent` (with the task
reports of :mod:`fogverse.wire.tasks`) on ``fogverse-nodes``; the master sends
:class:`InstanceStart`, :class:`InstanceStop` and task assignments on
``fogverse-node-orders``, keyed by node id. All share the control envelope.

A capacity report with impossible values (negative memory, battery 250 %, an
unknown thermal word, NaN) fails to decode with reason ``impossible_value``,
so it is counted and never scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from fogverse.control import (
    ControlDecodeError,
    body_dict,
    encode_envelope,
    open_envelope,
)
from fogverse.wire.fields import (
    IMPOSSIBLE,
    as_map,
    flag,
    names,
    opt_flag,
    opt_number,
    opt_text,
    positive_int,
    text,
)
from fogverse.wire.tasks import MAX_TASK_BYTES, TASK_KINDS, TaskBody

__all__ = [
    "INSTANCE_STATES",
    "KIND_INSTANCE_EVENT",
    "KIND_INSTANCE_START",
    "KIND_INSTANCE_STOP",
    "KIND_NODE_CAPACITY",
    "THERMAL_STATES",
    "FleetBody",
    "FleetMessage",
    "InstanceEvent",
    "InstanceStart",
    "InstanceStop",
    "NodeCapacity",
    "decode_fleet",
    "encode_fleet",
]

KIND_NODE_CAPACITY: Final = "node_capacity"
KIND_INSTANCE_START: Final = "instance_start"
KIND_INSTANCE_STOP: Final = "instance_stop"
KIND_INSTANCE_EVENT: Final = "instance_event"

THERMAL_STATES: Final = ("normal", "warm", "hot", "critical", "unknown")
INSTANCE_STATES: Final = ("started", "running", "exited", "stopped", "refused")

# Sanity bounds: beyond them a report is a bug or a lie, not a device.
_MAX_TEMP_C = 150.0
_MIN_TEMP_C = -60.0


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """One agent's periodic report: what the device has, is doing, and will take.

    A value the agent could not read is None (unknown), never a guess.
    """

    node_id: str
    incarnation: str
    """Fresh for every agent start, so the master can tell a restart from a beat."""
    interval: float = 2.0
    """Seconds until the next report; the master counts missed ones from this."""
    tags: tuple[str, ...] = ()
    cpu_cores: int | None = None
    cpu_percent: float | None = None
    memory_total_mb: float | None = None
    memory_used_mb: float | None = None
    gpu: bool | None = None
    gpu_memory_mb: float | None = None
    battery_powered: bool | None = None
    battery_percent: float | None = None
    charging: bool | None = None
    thermal_state: str = "unknown"
    cpu_temp_c: float | None = None
    network_type: str | None = None
    max_concurrent_tasks: int = 2
    task_types: tuple[str, ...] = ()
    running_tasks: tuple[str, ...] = ()
    running_instances: tuple[str, ...] = ()
    profile: str | None = None
    """The ``AIV_MOBILE_PROFILE`` preset or "env" when the environment overrode psutil."""


@dataclass(frozen=True, slots=True)
class InstanceStart:
    """Start one instance of a declared service (built from the master's config)."""

    node_id: str
    instance_id: str
    service_name: str
    module: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceStop:
    node_id: str
    instance_id: str
    grace_s: float = 10.0
    hard: bool = False
    """SIGKILL at once: for the old copy of a moved instance, which lives on elsewhere
    under the same id and must not send the goodbye that would retire that id."""


@dataclass(frozen=True, slots=True)
class InstanceEvent:
    """An agent reports an instance's life: started, exited by itself, stopped, refused."""

    node_id: str
    instance_id: str
    state: str
    service_name: str = ""
    pid: int | None = None
    exit_code: int | None = None
    detail: str = ""


NodeBody: TypeAlias = NodeCapacity | InstanceStart | InstanceStop | InstanceEvent
FleetBody: TypeAlias = NodeBody | TaskBody


@dataclass(frozen=True, slots=True)
class FleetMessage:
    kind: str
    version: int
    sender: str
    sent_at: float
    body: FleetBody


def _parse_capacity(body: dict[str, Any]) -> NodeCapacity:
    thermal = text(body, "thermal_state", "unknown")
    if thermal not in THERMAL_STATES:
        raise ControlDecodeError(IMPOSSIBLE, f"thermal_state {thermal!r} is not one of "
                                             f"{', '.join(THERMAL_STATES)}")
    total = opt_number(body, "memory_total_mb")
    used = opt_number(body, "memory_used_mb")
    if total is not None and used is not None and used > total:
        raise ControlDecodeError(IMPOSSIBLE, f"memory_used_mb {used:g} exceeds the total "
                                             f"{total:g}")
    cores = body.get("cpu_cores")
    return NodeCapacity(
        node_id=text(body, "node_id"),
        incarnation=text(body, "incarnation"),
        interval=_or(opt_number(body, "interval", 1e-3, 3600.0), 2.0),
        tags=names(body, "tags"),
        cpu_cores=None if cores is None else positive_int(body, "cpu_cores"),
        cpu_percent=opt_number(body, "cpu_percent", 0.0, 100.0),
        memory_total_mb=total,
        memory_used_mb=used,
        gpu=opt_flag(body, "gpu"),
        gpu_memory_mb=opt_number(body, "gpu_memory_mb"),
        battery_powered=opt_flag(body, "battery_powered"),
        battery_percent=opt_number(body, "battery_percent", 0.0, 100.0),
        charging=opt_flag(body, "charging"),
        thermal_state=thermal,
        cpu_temp_c=opt_number(body, "cpu_temp_c", _MIN_TEMP_C, _MAX_TEMP_C),
        network_type=opt_text(body, "network_type"),
        max_concurrent_tasks=positive_int(body, "max_concurrent_tasks", 2, low=0),
        task_types=names(body, "task_types"),
        running_tasks=names(body, "running_tasks"),
        running_instances=names(body, "running_instances"),
        profile=opt_text(body, "profile"),
    )


def _parse_start(body: dict[str, Any]) -> InstanceStart:
    module = opt_text(body, "module")
    command = names(body, "command")
    if (module is None) == (not command):
        raise ControlDecodeError("bad_body", "give exactly one of module or command")
    return InstanceStart(
        node_id=text(body, "node_id"),
        instance_id=text(body, "instance_id"),
        service_name=text(body, "service_name"),
        module=module,
        command=command,
        args=names(body, "args"),
        env=as_map(body, "env"),
        cwd=opt_text(body, "cwd"),
    )


def _parse_stop(body: dict[str, Any]) -> InstanceStop:
    return InstanceStop(
        node_id=text(body, "node_id"),
        instance_id=text(body, "instance_id"),
        grace_s=_or(opt_number(body, "grace_s", 0.0, 3600.0), 10.0),
        hard=flag(body, "hard", False),
    )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _parse_event(body: dict[str, Any]) -> InstanceEvent:
    state = text(body, "state")
    if state not in INSTANCE_STATES:
        raise ControlDecodeError(IMPOSSIBLE, f"state {state!r} is not one of {INSTANCE_STATES}")
    pid = body.get("pid")
    code = body.get("exit_code")
    return InstanceEvent(
        node_id=text(body, "node_id"),
        instance_id=text(body, "instance_id"),
        state=state,
        service_name=text(body, "service_name", ""),
        pid=None if pid is None else positive_int(body, "pid"),
        exit_code=None if code is None else positive_int(body, "exit_code", low=-255),
        detail=text(body, "detail", ""),
    )


_KINDS: Final[dict[type, tuple[str, Callable[[dict[str, Any]], Any]]]] = {
    NodeCapacity: (KIND_NODE_CAPACITY, _parse_capacity),
    InstanceStart: (KIND_INSTANCE_START, _parse_start),
    InstanceStop: (KIND_INSTANCE_STOP, _parse_stop),
    InstanceEvent: (KIND_INSTANCE_EVENT, _parse_event),
    **TASK_KINDS,
}
_PARSERS: Final = {kind: parse for kind, parse in _KINDS.values()}


def encode_fleet(msg: FleetBody, sender: str, key: bytes | None = None) -> bytes:
    """The envelope for a node or task record, signed when ``key`` is given."""
    kind, _ = _KINDS[type(msg)]
    payload = encode_envelope(kind, body_dict(msg), sender, key)
    if len(payload) > MAX_TASK_BYTES:
        raise ValueError(f"{kind} of {len(payload)} bytes exceeds {MAX_TASK_BYTES}: put large "
                         "task data on a data topic and pass its key")
    return payload


def decode_fleet(raw: bytes | None, key: bytes | None = None) -> FleetMessage:
    """Parse and validate one node or task record; ControlDecodeError on anything wrong."""
    env = open_envelope(raw, key, MAX_TASK_BYTES)
    parse = _PARSERS.get(env.kind)
    if parse is None:
        raise ControlDecodeError("unknown_kind", repr(env.kind))
    body: FleetBody = parse(env.body)
    return FleetMessage(env.kind, env.version, env.sender, env.sent_at, body)
