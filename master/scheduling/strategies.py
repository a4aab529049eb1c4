"""Placement strategies other than the indexed default: each ranks the nodes a task fits.

``score`` (the seed's node score, the default) is served by the score index;
the others scan the candidates, which the scheduler hands over in registration
order with the task already checked to fit each one.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from master.scheduling.nodes import NodeRecord
from master.scheduling.policies import Policies
from master.scheduling.tasks import TaskSpec

__all__ = ["Strategy", "latency_optimized", "least_loaded", "power_aware", "round_robin"]


class Strategy(Enum):
    SCORE = "score"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    LATENCY_OPTIMIZED = "latency_optimized"
    POWER_AWARE = "power_aware"
    DEADLINE_ENERGY = "deadline_energy"


def round_robin(candidates: Sequence[NodeRecord], after_reg: int) -> NodeRecord:
    """The first candidate registered after the last one chosen, wrapping around."""
    for node in candidates:
        if node.reg > after_reg:
            return node
    return candidates[0]


def least_loaded(candidates: Sequence[NodeRecord]) -> NodeRecord:
    """Fewest running tasks, then the largest free CPU share."""
    return min(candidates, key=lambda n: (len(n.active), -n.free_cpu / n.capacity.cpu_cores,
                                          n.reg))


def latency_optimized(candidates: Sequence[NodeRecord], spec: TaskSpec,
                      policies: Policies) -> NodeRecord:
    """Lowest network latency, then the best score."""
    return min(candidates, key=lambda n: (n.capacity.network_latency_ms,
                                          -n.task_score(spec, policies.large_input_mb), n.reg))


def power_rank(node: NodeRecord) -> int:
    cap = node.capacity
    if not cap.battery_powered:
        return 0
    return 1 if cap.is_charging else 2


def power_aware(candidates: Sequence[NodeRecord], spec: TaskSpec,
                policies: Policies) -> NodeRecord:
    """Mains first, then charging batteries, then the fullest battery; score breaks ties."""
    return min(candidates, key=lambda n: (power_rank(n), -(n.capacity.battery_percent or 0.0),
                                          -n.task_score(spec, policies.large_input_mb), n.reg))
