"""Requested plans expire once their instances are gone, and only so many are kept."""

from __future__ import annotations

import pytest

from deploy_scripts import DeployScripts
from master.deployer import AutoDeployer
from master.plan_book import PlanBook
from master.plans import RequestRefusedError, StagePlan
from tests.workers.worker_helpers import beat
from workers.registry import InstanceRegistry


def book(max_plans: int = 2) -> tuple[PlanBook, AutoDeployer, InstanceRegistry, list[object]]:
    registry = InstanceRegistry(expiry_beats=1)
    deployer = AutoDeployer(DeployScripts(), registry)
    dropped: list[object] = []
    return (PlanBook(deployer, None, registry, max_plans=max_plans, expiry=10.0,
                     on_drop=dropped.append), deployer, registry, dropped)


def test_a_requested_plan_with_no_instance_seen_expires_and_a_declared_one_never() -> None:
    plans, deployer, registry, dropped = book()
    plans.declare(StagePlan(("d", "x"), "svc", "REC", 0, 1))
    plans.request(StagePlan(("in", "out"), "svc", "REC", 0, 1))
    registry.on_heartbeat(beat("i1"), 0.0)
    assert plans.expire(0.0) == []
    assert plans.expire(5.0) == []           # i1 still live: the clock does not start
    registry.expire(5.0)                     # i1 is gone
    assert plans.expire(6.0) == []           # idle from now
    assert plans.expire(15.0) == []          # 9 s: not yet
    assert plans.expire(16.0) == [("in", "out")]
    assert deployer.stages() == [("d", "x")] and dropped == [("in", "out")]
    assert plans.expire(1000.0) == []


def test_requested_plans_are_capped_and_a_known_stage_is_still_updated() -> None:
    plans, deployer, _, _ = book(max_plans=2)
    plans.declare(StagePlan(("d", "x"), "svc", "REC", 0, 1))   # does not count
    plans.request(StagePlan(("a", "x"), "svc", "REC", 0, 1))
    plans.request(StagePlan(("b", "x"), "svc", "REC", 0, 1))
    with pytest.raises(RequestRefusedError) as info:
        plans.request(StagePlan(("c", "x"), "svc", "REC", 0, 1))
    assert info.value.reason == "too_many_plans"
    assert plans.request(StagePlan(("b", "x"), "svc", "REC", 0, 3))
    assert len(deployer.stages()) == 3
