"""Typed records of what the master knows, which ``/status`` and ``/metrics`` render.

Built on demand (a scrape, a call to :meth:`Master.status`), never per message.
:func:`to_json` turns any of them, and whatever a worker reports about itself,
into plain JSON values.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from master.deployer import AutoDeployer, DecisionRecord, StagePlanStatus
from master.status_views import InstanceStatus, NodeStatus
from workers.input_output import Assessment, InputOutputWorker
from workers.registry import InstanceRegistry, StageKey, stage_name

__all__ = ["ControlCounters", "MasterStatus", "MasterSummary", "StageStatus", "stage_statuses",
           "to_json"]


@dataclass(frozen=True, slots=True)
class ControlCounters:
    """Control messages accepted by kind, dropped and refused by reason."""

    messages: dict[str, int]
    malformed: dict[str, int]
    refused: dict[str, int]


@dataclass(frozen=True, slots=True)
class MasterSummary:
    uptime_s: float
    control_topic: str
    servers: str
    workers: list[str]
    instances: int
    messages: dict[str, int]
    malformed: dict[str, int]
    refused: dict[str, int]
    control_plane: str
    """``authenticated`` with a control key, ``unauthenticated`` (anyone may steer it) without."""
    state_rejected: dict[str, int]
    """State records refused at restore, by reason (each was logged with its key)."""


@dataclass(frozen=True, slots=True)
class StageStatus:
    stage: str
    source_topic: str | None
    target_topic: str | None
    live: int
    instances: list[str]
    consumed_rate: float
    produced_rate: float
    busy: float | None
    assessment: Assessment | None
    plan: StagePlanStatus | None


@dataclass(frozen=True, slots=True)
class MasterStatus:
    master: MasterSummary
    stages: list[StageStatus]
    workers: dict[str, object]
    """Each worker's own report (``worker.status()``), by worker name."""
    scheduler: dict[str, object] = dataclasses.field(default_factory=dict)
    """The scheduler's system status (nodes, clusters, tasks, statistics, policies)
    and its recent instance placements."""
    instances: list[InstanceStatus] = dataclasses.field(default_factory=list)
    """Every instance, live or starting, with the node it runs on."""
    nodes: list[NodeStatus] = dataclasses.field(default_factory=list)
    """The master's machine and every node agent: score, battery, heat, instances."""
    tasks: dict[str, int] = dataclasses.field(default_factory=dict)
    """Tasks by state (pending, active, completed, ...), over every scheduler."""
    decisions: list[DecisionRecord] = dataclasses.field(default_factory=list)
    """The deployer's recent decisions, oldest first (a hold when its reason changes)."""
    scale_actions: list[DecisionRecord] = dataclasses.field(default_factory=list)
    """Its recent scale-outs, scale-ins and failed actions only, oldest first: they
    stay listed however many holds come after them."""


def stage_statuses(
    registry: InstanceRegistry, deployer: AutoDeployer | None, io: InputOutputWorker | None
) -> list[StageStatus]:
    """One record per stage that has a plan or a live instance, by name."""
    keys: set[StageKey] = set(registry.stages())
    plans: Mapping[str, StagePlanStatus] = {}
    if deployer is not None:
        keys |= set(deployer.stages())
        plans = deployer.status().stages
    out = []
    for key in sorted(keys, key=stage_name):
        name = stage_name(key)
        rates = registry.stage_rates(key)
        out.append(StageStatus(
            stage=name, source_topic=key[0], target_topic=key[1], live=rates.live,
            instances=sorted(r.instance_id for r in registry.instances(key)),
            consumed_rate=round(rates.consumed, 3), produced_rate=round(rates.produced, 3),
            busy=None if rates.busy is None else round(rates.busy, 3),
            assessment=io.assessment(key) if io is not None else None,
            plan=plans.get(name),
        ))
    return out


def to_json(value: object) -> Any:
    """Plain JSON values from dataclasses, enums, mappings and sequences (floats rounded)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    return value
