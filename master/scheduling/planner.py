"""``deadline_energy``, our strategy: it plans with deadlines and battery cost together.

The seed's score sends work to the node with the most free share, whatever
that costs a battery and however slow the device is. This planner asks, per
task: which nodes finish it in time (the estimate divided by the node's
``cpu_speed``, with a safety margin), and what each would take out of a
battery that is not charging (per-core watts x cores x seconds, weighted by
how empty the battery already is)?

1. A node on mains or charging that finishes in time: take the one that
   finishes first.
2. None free now, but one on mains or charging frees a slot soon enough to
   still finish in time (or, without a deadline, within ``max_defer_seconds``):
   wait for it; the task stays queued.
3. Otherwise the cheapest battery that finishes in time; failing that, the
   node that finishes first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from master.scheduling.nodes import NodeRecord
from master.scheduling.policies import Policies
from master.scheduling.tasks import TaskSpec

__all__ = ["SAFETY_MARGIN", "battery_cost", "deadline_energy", "run_seconds"]

SAFETY_MARGIN = 0.15
"""Plans assume a task may run 15 % over its estimate."""


def run_seconds(spec: TaskSpec, node: NodeRecord) -> float:
    return spec.estimated_duration / node.capacity.cpu_speed


def battery_cost(spec: TaskSpec, node: NodeRecord) -> float:
    """Joules drawn from a discharging battery, scaled up as the battery empties."""
    cap = node.capacity
    if not cap.draws_battery:
        return 0.0
    joules = cap.power_budget_watts / cap.cpu_cores * spec.cpu_cores * run_seconds(spec, node)
    return joules * 100.0 / max(5.0, cap.battery_percent or 0.0)


def _finish(spec: TaskSpec, node: NodeRecord, start: float) -> float:
    return start + run_seconds(spec, node) * (1.0 + SAFETY_MARGIN)


def deadline_energy(
    spec: TaskSpec,
    candidates: Sequence[NodeRecord],
    soon_free: Iterable[tuple[NodeRecord, float]],
    now: float,
    policies: Policies,
) -> NodeRecord | None:
    """The node to use now, or None to keep the task queued for a free charger.

    ``soon_free`` lists nodes on mains or charging that could host the task but
    are busy now, with when their first running task should end.
    """
    deadline = spec.deadline
    free = [n for n in candidates if not n.capacity.draws_battery]
    in_time = [n for n in free if deadline is None or _finish(spec, n, now) <= deadline]
    if in_time:
        return min(in_time, key=lambda n: (_finish(spec, n, now), -n.key, n.reg))
    for node, release in soon_free:
        if deadline is None:
            if release - now <= policies.max_defer_seconds:
                return None
        elif _finish(spec, node, release) <= deadline:
            return None
    if not candidates:
        return None
    battery_in_time = [n for n in candidates
                       if deadline is None or _finish(spec, n, now) <= deadline]
    if battery_in_time:
        return min(battery_in_time, key=lambda n: (battery_cost(spec, n), -n.key, n.reg))
    return min(candidates, key=lambda n: (_finish(spec, n, now), n.reg))
