"""Which stages the master manages: declared ones for good, requested ones for a while.

A plan a request brought (or a restart restored) is dropped once none of its
instances has been seen for ``plan_expiry`` seconds, and at most ``max_plans``
requested plans are kept: whoever can write to the control topic cannot make
the master remember an unbounded number of stages. Plans the config declares
never expire and do not count against the cap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from master.deployer import AutoDeployer
from master.plans import RequestRefusedError, StagePlan
from workers.input_output import InputOutputWorker
from workers.registry import InstanceRegistry, StageKey, stage_name

__all__ = ["PlanBook"]

log = logging.getLogger("fogverse.master")


class PlanBook:
    """Hands plans to the deployer (and the input/output worker) and expires idle ones."""

    def __init__(
        self,
        deployer: AutoDeployer,
        input_output: InputOutputWorker | None,
        registry: InstanceRegistry,
        *,
        max_plans: int,
        expiry: float,
        on_drop: Callable[[StageKey], None] = lambda stage: None,
    ) -> None:
        self._deployer = deployer
        self._io = input_output
        self._registry = registry
        self._max = max_plans
        self._expiry = expiry
        self._on_drop = on_drop
        self._declared: set[StageKey] = set()
        self._idle_since: dict[StageKey, float | None] = {}
        """Requested stages, and since when none of their instances was seen."""

    def declare(self, plan: StagePlan) -> None:
        """A plan from the config: managed for as long as the master runs."""
        self._declared.add(plan.stage)
        self._idle_since.pop(plan.stage, None)
        self._manage(plan)

    def request(self, plan: StagePlan) -> bool:
        """A plan from a request (or the state topic); whether anything changed.

        RequestRefusedError ``too_many_plans`` when it would be one too many.
        """
        stage = plan.stage
        if stage not in self._declared and stage not in self._idle_since:
            if len(self._idle_since) >= self._max:
                raise RequestRefusedError(
                    "too_many_plans", f"not managing {stage_name(stage)}: already {self._max} "
                    "requested stages (max_plans)")
            self._idle_since[stage] = None
        return self._manage(plan)

    def _manage(self, plan: StagePlan) -> bool:
        changed = self._deployer.set_plan(plan)
        if self._io is not None:
            self._io.watch(plan.stage, plan.group_id)
        return changed

    def expire(self, now: float) -> list[StageKey]:
        """Drop requested plans none of whose instances was seen for ``expiry`` seconds."""
        dropped = []
        for stage, since in list(self._idle_since.items()):
            if self._registry.live_count(stage) or self._deployer.instances(stage):
                self._idle_since[stage] = None
            elif since is None:
                self._idle_since[stage] = now
            elif now - since >= self._expiry and self._deployer.drop_plan(stage):
                del self._idle_since[stage]
                if self._io is not None:
                    self._io.unwatch(stage)
                log.info("forgetting the plan for %s: no instance seen for %.0fs",
                         stage_name(stage), now - since)
                self._on_drop(stage)
                dropped.append(stage)
        return dropped
