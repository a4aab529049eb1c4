"""The scheduler facade: nodes and tasks in, placements out, time passed in by the caller.

Nothing here reads a clock or does I/O. The caller reports capacities, submits
tasks and calls :meth:`Scheduler.schedule` with the current time; each pass
expires tasks past their deadline, fails (and retries) tasks that ran too long,
and places queued tasks in priority order. The same calls in the same order
always give the same placements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from master.scheduling.capacity import Capacity, compute_score
from master.scheduling.clusters import ClusterSet
from master.scheduling.harvest import (
    ContributionLedger,
    HarvestProfile,
    HarvestSignals,
    harvest_blocker,
)
from master.scheduling.index import ScoreIndex
from master.scheduling.lifecycle import TaskLifecycle
from master.scheduling.nodes import NodeRecord
from master.scheduling.planner import deadline_energy, run_seconds
from master.scheduling.policies import Policies, PolicyError, PolicyMapping
from master.scheduling.queue import PendingQueue
from master.scheduling.stats import Statistics, system_status
from master.scheduling.strategies import (
    Strategy,
    latency_optimized,
    least_loaded,
    power_aware,
    round_robin,
)
from master.scheduling.tasks import TaskPriority, TaskRecord, TaskSpec, TaskState, TaskType
from master.scheduling.validation import CapacityRejected, capacity_from_report, validate_capacity

__all__ = ["Assignment", "SchedulePass", "Scheduler", "UnknownNode"]

_STRATEGIES = frozenset(s.value for s in Strategy)


class UnknownNode(KeyError):
    """A report or removal for a node that was never registered (or already left)."""


class Assignment(NamedTuple):
    """One placement (a tuple: it is made once per decision, on the hot path)."""

    task_id: str
    node_id: str
    attempt: int


@dataclass(slots=True)
class SchedulePass:
    """What one :meth:`Scheduler.schedule` call did."""

    assigned: list[Assignment] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Scheduler(TaskLifecycle):
    def __init__(self, policies: Policies | None = None, *,
                 coordinator_id: str = "fogverse-scheduler") -> None:
        self.coordinator_id = coordinator_id
        self._policies = policies or Policies()
        self.policies = PolicyMapping(self._policies, self._policies_changed)
        self.nodes: dict[str, NodeRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.task_counts: Counter[tuple[TaskType, TaskState]] = Counter()
        self.stats = Statistics()
        self.ledger = ContributionLedger()
        self.clusters = ClusterSet(self.node_compute_score)
        self._index = ScoreIndex(self._policies.large_input_mb)
        self._queue = PendingQueue()
        self._timeouts: list[tuple[float, int, int, TaskRecord]] = []
        self._harvesters: dict[str, NodeRecord] = {}
        self._ever_fits: dict[tuple[int, int, bool], bool] = {}
        self._fleet_shrank = False
        self._next_reg = 0
        self._next_seq = 0
        self._last_rr = -1
        self._finished: list[str] = []

    # -- nodes -----------------------------------------------------------------------------

    def _checked(self, capacity: Capacity | Mapping[str, Any]) -> Capacity:
        try:
            if isinstance(capacity, Capacity):
                return validate_capacity(capacity)
            return capacity_from_report(capacity)
        except CapacityRejected as exc:
            self.stats.reports_rejected += 1
            self.stats.rejected_reasons[exc.reason] += 1
            raise

    def register_node(self, node_id: str, capacity: Capacity | Mapping[str, Any],
                      now: float = 0.0, *, harvest: HarvestProfile | None = None,
                      signals: HarvestSignals | None = None,
                      metadata: Mapping[str, object] | None = None) -> bool:
        """Add a node; False if it is registered already. A bad report raises CapacityRejected."""
        checked = self._checked(capacity)
        if node_id in self.nodes:
            return False
        node = NodeRecord(node_id, self._next_reg, checked, harvest=harvest,
                          signals=signals or HarvestSignals(), metadata=dict(metadata or {}))
        self._next_reg += 1
        self.nodes[node_id] = node
        if harvest is not None:
            self._harvesters[node_id] = node
            self._judge_harvest(node, now)
        node.rescore(self._policies)
        self._index.add(node)
        self._ever_fits.clear()
        self.stats.nodes_registered += 1
        self.clusters.joined(node_id, self._policies.cluster_size_target)
        return True

    def update_node(self, node_id: str, capacity: Capacity | Mapping[str, Any],
                    now: float = 0.0, *, signals: HarvestSignals | None = None) -> None:
        """A fresh capacity report; reservations made here are kept on top of it."""
        checked = self._checked(capacity)
        node = self._node(node_id)
        old = node.capacity
        if (old.cpu_cores, old.memory_mb, old.gpu_available) != (
                checked.cpu_cores, checked.memory_mb, checked.gpu_available):
            self._ever_fits.clear()
            self._fleet_shrank = True
        node.capacity = checked
        if signals is not None:
            node.signals = signals
        if node.harvest is not None:
            self._judge_harvest(node, now)
        node.rescore(self._policies)
        self._index.put(node)

    def unregister_node(self, node_id: str, now: float = 0.0) -> list[str]:
        """The node left: its running tasks are retried elsewhere (or fail). Returns their ids."""
        node = self._node(node_id)
        moved = list(node.active)
        for record in list(node.active.values()):
            self._release(record)
            self._retry_or_fail(record, now, "node_left")
        del self.nodes[node_id]
        self._harvesters.pop(node_id, None)
        self._index.remove(node)
        self._ever_fits.clear()
        self._fleet_shrank = True
        self.stats.nodes_departed += 1
        self.clusters.left(node_id, self._policies.cluster_size_target)
        return moved

    def _node(self, node_id: str) -> NodeRecord:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise UnknownNode(node_id) from None

    def node_compute_score(self, node_id: str) -> float:
        """The seed's compute score of a node, with what is reserved on it counted as used."""
        node = self.nodes[node_id]
        return compute_score(node.capacity, node.reserved_mc / 1000, node.reserved_mem)

    def _judge_harvest(self, node: NodeRecord, now: float) -> bool:
        """Re-judge a harvesting node at ``now``; True when its answer changed."""
        assert node.harvest is not None
        reason = harvest_blocker(node.harvest, node.capacity, node.signals, now)
        if not node.session.advance(node.harvest, reason is None, now) and reason is None:
            reason = "harvest_rest"
        changed = reason != node.harvest_reason
        node.harvest_reason = reason
        return changed

    # -- policies ----------------------------------------------------------------------------

    def _policies_changed(self, policies: Policies) -> None:
        if policies.default_strategy not in _STRATEGIES:
            raise PolicyError(f"policy default_strategy must be one of {sorted(_STRATEGIES)}, "
                              f"got {policies.default_strategy!r}")
        self._policies = policies
        for node in self.nodes.values():
            node.rescore(policies)
        self._index.reindex(policies.large_input_mb)

    # -- tasks -------------------------------------------------------------------------------

    def submit_task(self, task_type: TaskType = TaskType.INFERENCE,
                    priority: TaskPriority = TaskPriority.NORMAL, cpu_cores: float = 1.0,
                    memory_mb: int = 512, estimated_duration: float = 60.0, *,
                    input_size_mb: float = 0.0, deadline: float | None = None,
                    requires_gpu: bool = False, max_retries: int = 3,
                    strategy: str | None = None, now: float = 0.0,
                    task_id: str | None = None) -> str:
        """Queue a task (the seed's signature, with time passed in); returns its id."""
        spec = TaskSpec(task_type, priority, round(cpu_cores * 1000), memory_mb, requires_gpu,
                        float(estimated_duration), float(input_size_mb), deadline, max_retries,
                        strategy)
        return self.submit(spec, now, task_id)

    def submit(self, spec: TaskSpec, now: float, task_id: str | None = None) -> str:
        if spec.strategy is not None and spec.strategy not in _STRATEGIES:
            raise ValueError(f"unknown strategy {spec.strategy!r}; one of {sorted(_STRATEGIES)}")
        seq = self._next_seq
        self._next_seq += 1
        task_id = task_id or f"task-{seq:08d}"
        if task_id in self.tasks:
            raise ValueError(f"task id {task_id!r} is in use")
        record = TaskRecord(task_id, spec, now, seq)
        self.tasks[task_id] = record
        self.task_counts[spec.task_type, TaskState.PENDING] += 1
        self.stats.tasks_submitted += 1
        if not self._could_ever_run(spec):
            self._finish(record, TaskState.FAILED, now, "no registered node could ever satisfy it")
            self.stats.tasks_unsatisfiable += 1
        else:
            self._queue.push(record)
        return task_id

    def resume(self, spec: TaskSpec, task_id: str, now: float, *, attempts: int = 0,
               tried: tuple[str, ...] = (), node_id: str | None = None,
               reason: str = "retries exhausted") -> TaskRecord:
        """A task known from before a restart, with the attempts it has used.

        With ``node_id`` (a registered node that runs it) it is adopted there as
        running; otherwise it is queued again, or fails with ``reason`` when its
        attempts are spent."""
        self.submit(spec, now, task_id)
        record = self.tasks[task_id]
        if record.state is not TaskState.PENDING:
            return record  # no node could ever run it: failed on submission
        record.tried = tried
        if node_id is not None:
            self._queue.left()  # its queue entry is skipped once it is not pending
            record.attempts = max(0, attempts - 1)
            self._assign(record, self._node(node_id), now)
        else:
            record.attempts = attempts
            if attempts > spec.max_retries:
                self._queue.left()
                self._finish(record, TaskState.FAILED, now, reason)
        return record

    def _could_ever_run(self, spec: TaskSpec) -> bool:
        shape = (spec.cpu_millicores, spec.memory_mb, spec.requires_gpu)
        known = self._ever_fits.get(shape)
        if known is None:
            known = any(n.could_ever_fit(spec) for n in self.nodes.values())
            self._ever_fits[shape] = known
        return known

    def get_task_status(self, task_id: str) -> dict[str, object] | None:
        record = self.tasks.get(task_id)
        return None if record is None else record.as_status()

    def get_system_status(self) -> dict[str, Any]:
        return system_status(self)

    # -- the pass ----------------------------------------------------------------------------

    def schedule(self, now: float) -> SchedulePass:
        """Expire, time out, then place queued tasks in priority order."""
        result = SchedulePass()
        for node in self._harvesters.values():
            if self._judge_harvest(node, now):
                node.rescore(self._policies)
                self._index.put(node)
        for record in self._queue.expired(now):
            self._queue.left()
            self._finish(record, TaskState.EXPIRED, now, "deadline passed while queued")
            result.expired.append(record.task_id)
        self._time_out(now, result)
        if self._fleet_shrank:
            self._fail_unsatisfiable(now, result)
        self._place_queued(now, result)
        return result

    def _fail_unsatisfiable(self, now: float, result: SchedulePass) -> None:
        self._fleet_shrank = False
        for record in self._queue.peek_order():
            if not self._could_ever_run(record.spec):
                self._queue.left()
                self._finish(record, TaskState.FAILED, now,
                             "no registered node could ever satisfy it")
                self.stats.tasks_unsatisfiable += 1
                result.failed.append(record.task_id)

    def _place_queued(self, now: float, result: SchedulePass) -> None:
        # A score-strategy task that found no node proves every task of the same
        # kind needing at least as much CPU and memory finds none in this pass.
        failed: dict[tuple[bool, bool], list[tuple[int, int]]] = {}
        default = self._policies.default_strategy
        long_seconds = self._policies.long_task_seconds
        best = self._index.best
        assigned = result.assigned
        for record in self._queue.drain():
            spec = record.spec
            strategy = spec.strategy or default
            if strategy == "score" and not record.tried:
                long_task = spec.estimated_duration > long_seconds
                shape = (spec.requires_gpu, long_task)
                cpu, memory = spec.cpu_millicores, spec.memory_mb
                seen = failed.get(shape)
                if seen is not None and any(c <= cpu and m <= memory for c, m in seen):
                    continue
                node = best(spec, long_task, (), True)
                if node is None:
                    failed.setdefault(shape, []).append((cpu, memory))
                    continue
            else:
                node = self._choose(record, strategy, now)
                if node is None:
                    continue
            self._assign(record, node, now)
            assigned.append(Assignment(record.task_id, node.node_id, record.attempts))

    def choose_node(self, spec: TaskSpec, now: float,
                    avoid: tuple[str, ...] = ()) -> str | None:
        """Where ``spec`` would go now, without reserving anything (deployers ask this).

        Nodes in ``avoid`` are never chosen (an instance moving off one)."""
        strategy = spec.strategy or self._policies.default_strategy
        if strategy == Strategy.DEADLINE_ENERGY.value:
            strategy = Strategy.SCORE.value  # an instance is placed now or never
        record = TaskRecord("", spec, now, -1, tried=avoid)
        node = self._choose(record, strategy, now, take=False)
        return None if node is None else node.node_id

    def _choose(self, record: TaskRecord, strategy: str, now: float,
                take: bool = True) -> NodeRecord | None:
        spec = record.spec
        long_task = spec.estimated_duration > self._policies.long_task_seconds
        avoid = self._avoid(record) if take else record.tried
        if strategy == "score":
            return self._index.best(spec, long_task, avoid, take)
        candidates = [n for n in self.nodes.values()
                      if n.listed and n.fits(spec) and (n.long_ok or not long_task)
                      and not (avoid and n.node_id in avoid)]
        if strategy == "deadline_energy":
            return deadline_energy(spec, candidates, self._soon_free(spec, candidates, now),
                                   now, self._policies)
        if not candidates:
            return None
        if strategy == "round_robin":
            return round_robin(candidates, self._last_rr)
        if strategy == "least_loaded":
            return least_loaded(candidates)
        if strategy == "latency_optimized":
            return latency_optimized(candidates, spec, self._policies)
        return power_aware(candidates, spec, self._policies)

    def _avoid(self, record: TaskRecord) -> tuple[str, ...]:
        """Nodes a retried task already failed on, unless no other node could ever run it."""
        if not record.tried:
            return record.tried
        others = any(n.could_ever_fit(record.spec) for n in self.nodes.values()
                     if n.node_id not in record.tried)
        return record.tried if others else ()

    def _soon_free(self, spec: TaskSpec, candidates: list[NodeRecord],
                   now: float) -> list[tuple[NodeRecord, float]]:
        """Busy nodes on mains or charging the task could use once their first task ends."""
        out: list[tuple[NodeRecord, float]] = []
        chosen = set(map(id, candidates))
        for node in self.nodes.values():
            if (id(node) in chosen or not node.active or node.capacity.draws_battery
                    or node.blocker not in (None, "task_limit") or not node.could_ever_fit(spec)):
                continue
            ends = [(now if r.assigned_at is None else r.assigned_at) + run_seconds(r.spec, node)
                    for r in node.active.values()]
            out.append((node, max(now, min(ends))))
        return out
