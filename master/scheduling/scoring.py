"""How well a node suits a task (the fog-coordinator seed's node score)."""

from __future__ import annotations

from master.scheduling.capacity import Capacity, ThermalState, score_from_free
from master.scheduling.policies import Policies
from master.scheduling.tasks import TaskSpec

__all__ = [
    "CHARGING_BONUS",
    "GPU_BONUS",
    "MAINS_BONUS",
    "THERMAL_PENALTY",
    "network_factor",
    "node_key",
    "node_score",
]

CHARGING_BONUS = 1.5
MAINS_BONUS = 1.2
GPU_BONUS = 1.3
THERMAL_PENALTY: dict[ThermalState, float] = {
    ThermalState.NORMAL: 1.0,
    ThermalState.WARM: 0.9,
    ThermalState.HOT: 0.5,
    ThermalState.CRITICAL: 0.1,
    ThermalState.UNKNOWN: 0.5,
}


def node_key(capacity: Capacity, free_cpu: float, free_memory_mb: float) -> float:
    """The part of the node score every task shares (the order of products is the seed's)."""
    score = score_from_free(capacity, free_cpu, free_memory_mb)
    if capacity.battery_powered and capacity.is_charging:
        score *= CHARGING_BONUS
    if not capacity.battery_powered:
        score *= MAINS_BONUS
    return score * THERMAL_PENALTY[capacity.thermal_state]


def network_factor(capacity: Capacity, policies: Policies) -> float:
    """0.5 + 0.5 x min(1, bandwidth / 100 Mbps): applied when a task's input is large."""
    return 0.5 + 0.5 * min(1.0, capacity.network_bandwidth_mbps / policies.reference_bandwidth_mbps)


def node_score(
    capacity: Capacity,
    task: TaskSpec,
    policies: Policies,
    reserved_cpu: float = 0.0,
    reserved_memory_mb: int = 0,
) -> float:
    score = node_key(capacity, capacity.available_cpu_cores - reserved_cpu,
                     capacity.available_memory_mb - reserved_memory_mb)
    if task.requires_gpu and capacity.gpu_available:
        score *= GPU_BONUS
    if task.input_size_mb > policies.large_input_mb:
        score *= network_factor(capacity, policies)
    return score
