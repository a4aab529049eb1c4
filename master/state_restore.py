"""A restarted Master takes back what the last one managed, and keeps that record.

The state topic holds the plans of requested stages and the instances the
master deployed. On start the plans are requested again (meeting today's
checks) and the instances still running are adopted; while running, the
ledger writes down each instance the deployer starts or stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from deploy_scripts import DeployResult, DeployScripts, ServiceSpec
from fogverse.control import AutoScaleRequest
from master.deployer import AutoDeployer
from master.plan_book import PlanBook
from master.plans import RequestRefusedError, StagePlan, plan_for_request
from master.state import StateStore
from master.state_records import DeployedInstance, msgpack_safe
from workers.registry import stage_name

__all__ = ["StateLedger", "adopt_instances", "restore_plans"]

log = logging.getLogger("fogverse.master")


def restore_plans(
    store: StateStore, stored: list[StagePlan], plans: PlanBook,
    services: Mapping[str, ServiceSpec], state_topic: str,
) -> None:
    """Request each stored plan again; one refused now is recorded as rejected."""
    for old in stored:
        # The config may have changed since: the stored plan is a request
        # like any other and meets the same checks.
        try:
            plan = plan_for_request(_as_request(old), services)
            plans.request(plan)
        except RequestRefusedError as exc:
            store.reject(exc.reason, stage_name(old.stage), str(exc))
            continue
        log.info("restored the plan for %s from %s", stage_name(plan.stage), state_topic)


async def adopt_instances(
    store: StateStore, deployer: AutoDeployer, scripts: DeployScripts,
    instances: list[DeployedInstance], state_topic: str,
) -> None:
    """Take back the instances an earlier master deployed that still run.

    Each provider finds its own from the recorded ``info``; one that is gone
    (or cannot be found) loses its record. One still running but not found
    here is still recognised by its heartbeats: it counts as live, so no
    duplicate is deployed, only this master cannot stop it."""
    for rec in instances:
        result = None
        if deployer.plan(rec.stage) is not None:
            try:
                result = await scripts.adopt(rec.provider, rec.instance_id, rec.info)
            except Exception as exc:
                log.warning("could not adopt instance %s of %s: %r", rec.instance_id,
                            stage_name(rec.stage), exc)
        if result is not None and deployer.adopt(rec.stage, result):
            continue
        log.info("instance %s of %s from %s is not adopted (gone, or its stage is not "
                 "managed any more)", rec.instance_id, stage_name(rec.stage), state_topic)
        store.drop_instance(rec.instance_id)


class StateLedger:
    """Records each instance the deployer starts, and forgets each it stops, in the
    state topic (once the master has started and has one)."""

    def __init__(self, store: Callable[[], StateStore | None]) -> None:
        self._store = store

    def started(self, plan: StagePlan, result: DeployResult) -> None:
        store, source = self._store(), plan.stage[0]
        if store is None or source is None:
            return
        store.save_instance(DeployedInstance(
            result.instance_id, (source, plan.stage[1]), plan.service_name, plan.provider,
            msgpack_safe(result.info)))

    def stopped(self, instance_id: str) -> None:
        store = self._store()
        if store is not None:
            store.drop_instance(instance_id)


def _as_request(plan: StagePlan) -> AutoScaleRequest:
    return AutoScaleRequest(
        source_topic=plan.stage[0] or "", target_topic=plan.stage[1],
        service_name=plan.service_name, provider=plan.provider,
        max_instance=plan.max_instance, min_instance=plan.min_instance,
        extra_configs=dict(plan.extra_configs), group_id=plan.group_id,
    )
