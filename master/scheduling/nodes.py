"""A registered node: its last report, what the scheduler reserved on it, and its index keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from master.scheduling.capacity import THERMAL_FACTOR, Capacity, power_factor
from master.scheduling.harvest import HarvestProfile, HarvestSession, HarvestSignals
from master.scheduling.policies import Policies, long_task_allowed, node_blocker
from master.scheduling.scoring import (
    CHARGING_BONUS,
    GPU_BONUS,
    MAINS_BONUS,
    THERMAL_PENALTY,
    network_factor,
)
from master.scheduling.tasks import TaskRecord, TaskSpec

__all__ = ["NodeRecord"]


@dataclass(slots=True, eq=False)
class NodeRecord:
    """Keys are the seed's node score, computed with the same products in the same order.

    :meth:`rescore` runs when the report, the harvest verdict or the policies
    change; :meth:`refresh` when only the reservations did (the hot path).
    """

    node_id: str
    reg: int
    capacity: Capacity
    harvest: HarvestProfile | None = None
    signals: HarvestSignals = field(default_factory=HarvestSignals)
    session: HarvestSession = field(default_factory=HarvestSession)
    harvest_reason: str | None = None
    metadata: dict[str, object] = field(default_factory=dict)
    reserved_mc: int = 0
    reserved_mem: int = 0
    active: dict[str, TaskRecord] = field(default_factory=dict)
    version: int = 0
    listed: bool = False
    blocker: str | None = None
    long_ok: bool = True
    free_cpu: float = 0.0
    free_mem: float = 0.0
    key: float = 0.0
    key_large: float = 0.0
    key_gpu: float = 0.0
    key_gpu_large: float = 0.0
    # Fixed until the next report or policy change.
    _report_cpu: float = 0.0
    _report_mem: float = 0.0
    _cores: int = 1
    _memory: int = 1
    _power: float = 1.0
    _thermal: float = 1.0
    _bonus: float = 1.0
    _penalty: float = 1.0
    _net: float = 1.0
    _gpu: bool = False
    _limit: int = 1
    _policy_blocker: str | None = None

    def rescore(self, policies: Policies) -> None:
        cap = self.capacity
        cpu = cap.available_cpu_cores
        memory: float = cap.available_memory_mb
        if self.harvest is not None:
            cpu = min(cpu, cap.cpu_cores * self.harvest.cpu_share)
            memory = min(memory, cap.memory_mb * self.harvest.memory_share)
        self._report_cpu, self._report_mem = cpu, memory
        self._cores, self._memory = max(1, cap.cpu_cores), max(1, cap.memory_mb)
        self._power = power_factor(cap)
        self._thermal = THERMAL_FACTOR[cap.thermal_state]
        charging_bonus = CHARGING_BONUS if cap.battery_powered and cap.is_charging else 1.0
        self._bonus = MAINS_BONUS if not cap.battery_powered else charging_bonus
        self._penalty = THERMAL_PENALTY[cap.thermal_state]
        self._net = network_factor(cap, policies)
        self._gpu = cap.gpu_available
        self._limit = policies.max_concurrent_tasks_per_node
        self._policy_blocker = node_blocker(policies, cap) or self.harvest_reason
        self.long_ok = long_task_allowed(policies, cap)
        self.refresh()

    def refresh(self) -> None:
        """Recompute free resources and keys; the new version makes old index entries stale."""
        free_cpu = self._report_cpu - self.reserved_mc / 1000
        free_mem = self._report_mem - self.reserved_mem
        self.free_cpu, self.free_mem = free_cpu, free_mem
        blocker = self._policy_blocker
        if blocker is None and len(self.active) >= self._limit:
            blocker = "task_limit"
        self.blocker = blocker
        self.listed = blocker is None
        cpu_score = (free_cpu if free_cpu > 0.0 else 0.0) / self._cores
        memory_score = (free_mem if free_mem > 0.0 else 0.0) / self._memory
        score = (cpu_score + memory_score) / 2 * self._power * self._thermal
        key = (min(1.0, score) * self._bonus) * self._penalty
        self.key = key
        self.key_large = key * self._net
        if self._gpu:
            self.key_gpu = key * GPU_BONUS
            self.key_gpu_large = self.key_gpu * self._net
        self.version += 1

    def fits(self, spec: TaskSpec) -> bool:
        """Enough free CPU and memory, and a GPU when the task needs one."""
        return (self.free_cpu >= spec.cpu_cores and self.free_mem >= spec.memory_mb
                and (self._gpu or not spec.requires_gpu))

    def could_ever_fit(self, spec: TaskSpec) -> bool:
        """The task fits the bare device (nothing else running, any policy state)."""
        cap = self.capacity
        cpu: float = cap.cpu_cores
        memory: float = cap.memory_mb
        if self.harvest is not None:
            cpu *= self.harvest.cpu_share
            memory *= self.harvest.memory_share
        return (cpu >= spec.cpu_cores and memory >= spec.memory_mb
                and (cap.gpu_available or not spec.requires_gpu))

    def task_score(self, spec: TaskSpec, large_input_mb: float) -> float:
        if spec.input_size_mb > large_input_mb:
            return self.key_gpu_large if spec.requires_gpu else self.key_large
        return self.key_gpu if spec.requires_gpu else self.key
