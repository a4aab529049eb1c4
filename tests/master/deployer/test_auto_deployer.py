"""AutoDeployer against a recording provider: what it starts and stops, and when.

The provider is a plain deploy function registered in the real DeployScripts (as
users register theirs); the clock is driven by hand. Real processes and a real
broker are exercised in tests/master/.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from deploy_scripts import DeployConfig, DeployResult, DeployScripts
from master.deployer import AutoDeployer
from master.plans import StagePlan
from master.scheduling.autoscale import Action, Decision, DeployerSettings
from tests.workers.worker_helpers import beat
from workers.input_output import InputOutputSettings, InputOutputWorker
from workers.registry import InstanceRegistry
from workers.statistic import StatisticSettings, StatisticWorker

STAGE = ("in", "out")


@dataclass
class Recorder:
    """A deploy function that records starts and stops, optionally blocking."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    configs: list[DeployConfig] = field(default_factory=list)
    gate: threading.Event | None = None
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        if self.gate is not None:
            assert self.gate.wait(10), "the deploy function was never released"
        instance_id = f"i{next(self.ids)}"
        self.started.append(instance_id)
        self.configs.append(config)
        return DeployResult(instance_id, lambda: self.stopped.append(instance_id))


@dataclass
class Partitions:
    """Records partition growth the deployer asks for (the broker part is tested live)."""

    counts: dict[str, int] = field(default_factory=lambda: {"in": 1})

    async def partition_count(self, topic: str) -> int | None:
        return self.counts.get(topic)

    async def ensure_partitions(self, topic: str, count: int) -> int:
        self.counts[topic] = max(self.counts[topic], count)
        return self.counts[topic]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(
    recorder: Recorder, plan: StagePlan | None = None, io: InputOutputWorker | None = None,
    stat: StatisticWorker | None = None, registry: InstanceRegistry | None = None,
    **settings: Any,
) -> tuple[AutoDeployer, InstanceRegistry, Partitions, Clock]:
    scripts = DeployScripts()
    scripts.set_deploy_functions("REC", recorder)
    registry = InstanceRegistry() if registry is None else registry
    admin, clock = Partitions(), Clock()
    options = {"deploy_delay": 2.0, "after_heartbeat_delay": 1.0, "startup_grace": 1.0,
               "partitions_ahead": False, **settings}
    deployer = AutoDeployer(scripts, registry, DeployerSettings(**options), statistic=stat,
                            input_output=io, admin=admin, clock=clock)
    deployer.set_plan(plan or StagePlan(STAGE, "svc", "REC", min_instance=1, max_instance=3))
    return deployer, registry, admin, clock


async def step(deployer: AutoDeployer, clock: Clock, now: float) -> None:
    """Advance to ``now``, tick, and let any action it started finish."""
    clock.now = now
    await deployer.tick(now)
    await settle(deployer)


async def settle(deployer: AutoDeployer) -> None:
    await deployer.idle()


def codes(deployer: AutoDeployer) -> list[str]:
    return [d.code for d in deployer.decisions]


def stage_status(deployer: AutoDeployer) -> Any:
    return deployer.status().stages["in->out"]


async def test_brings_a_stage_up_to_min_instance_after_the_startup_grace() -> None:
    rec = Recorder()
    deployer, registry, _, clock = make(rec)
    await step(deployer, clock, 0.0)
    assert rec.started == []  # still learning who is alive
    await step(deployer, clock, 1.0)
    assert rec.started == ["i0"]
    assert rec.configs[0]["service_name"] == "svc" and rec.configs[0]["max_instance"] == 3
    assert codes(deployer) == ["learning", "below_min"]
    await step(deployer, clock, 2.0)
    assert stage_status(deployer).starting == ["i0"]
    registry.on_heartbeat(beat("i0"), 2.5)
    await step(deployer, clock, 3.5)
    assert stage_status(deployer).starting == []
    assert rec.started == ["i0"]


async def test_an_instance_already_running_is_counted_before_deploying() -> None:
    rec = Recorder()
    deployer, registry, _, clock = make(rec)
    await step(deployer, clock, 0.0)
    registry.on_heartbeat(beat("external"), 0.5)
    await step(deployer, clock, 1.0)
    assert rec.started == []


async def test_scales_out_on_lag_growth_with_partitions_first_and_stops_at_max() -> None:
    rec = Recorder()
    registry = InstanceRegistry(expiry_beats=100)
    lag = [0]

    async def read_lag(group: str, topic: str) -> int | None:
        return lag[0]

    io = InputOutputWorker(registry, InputOutputSettings(), read_lag)
    deployer, _, admin, clock = make(rec, io=io, registry=registry)
    registry.on_heartbeat(beat("external", consumed=10, produced=10), 0.0)
    for t in range(60):
        now = float(t)
        for instance in ["external", *rec.started]:
            registry.on_heartbeat(beat(instance, consumed=10, produced=10), now)
        lag[0] += 50  # never keeps up
        await io.refresh_lags(now)
        io.sample(now)
        await step(deployer, clock, now)
    assert rec.started == ["i0", "i1"]  # 1 external + 2 = max_instance 3
    assert admin.counts["in"] == 3
    assert codes(deployer).count("needs_more") == 2 and codes(deployer)[-1] == "at_max"
    assert "lag growing" in deployer.decisions[-1].reason


async def test_never_scales_out_on_a_spike() -> None:
    rec = Recorder()
    registry = InstanceRegistry(expiry_beats=100)
    stat = StatisticWorker(registry, StatisticSettings(z_value=2.0, maximum_seconds=10))
    io = InputOutputWorker(registry, InputOutputSettings())
    deployer, _, _, clock = make(rec, io=io, stat=stat, registry=registry)
    for t in range(12):
        rate = 10 if t < 11 else 1000  # a one-second burst at the end
        registry.on_heartbeat(beat("src", source=None, target="in", produced=rate), float(t))
        registry.on_heartbeat(beat("w", consumed=10, produced=10), float(t))
        stat.sample(float(t))
        io.sample(float(t))
        await step(deployer, clock, float(t))
    assert rec.started == []
    assert deployer.decisions[-1].code == "spike"


async def test_scales_in_newest_first_down_to_min_and_retires_it() -> None:
    rec = Recorder()
    registry = InstanceRegistry(expiry_beats=100)
    io = InputOutputWorker(registry, InputOutputSettings(scale_in_hold=2.0))
    plan = StagePlan(STAGE, "svc", "REC", min_instance=1, max_instance=3)
    deployer, _, _, clock = make(rec, plan=plan, io=io, registry=registry)
    # three instances this master started, all idle
    for _ in range(3):
        await deployer.act(STAGE, Decision(Action.SCALE_OUT, "test", "three to start with", 3))
    for t in range(40):
        for instance in rec.started:
            if not registry.is_retired(instance):
                registry.on_heartbeat(beat(instance), float(t))
        io.sample(float(t))
        await step(deployer, clock, float(t))
    assert rec.stopped == ["i2", "i1"]
    assert registry.live_count(STAGE) == 1
    assert codes(deployer).count("too_many") == 2


async def test_a_blocking_deploy_function_does_not_block_the_loop() -> None:
    gate = threading.Event()
    rec = Recorder(gate=gate)
    deployer, _, _, clock = make(rec, startup_grace=0.0)
    clock.now = 0.0
    await deployer.tick(0.0)  # starts the deploy, which blocks in its thread
    # If the loop were blocked this would never run and the deploy never finish.
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(settle(deployer), 10)
    assert rec.started == ["i0"]


async def test_a_failing_deploy_is_reported_and_retried_after_the_delay() -> None:
    calls = []

    def broken(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        calls.append(config)
        raise RuntimeError("no capacity")

    scripts = DeployScripts()
    scripts.set_deploy_functions("REC", broken)
    registry = InstanceRegistry()
    clock = Clock()
    deployer = AutoDeployer(scripts, registry, DeployerSettings(deploy_delay=2, startup_grace=0),
                            clock=clock)
    deployer.set_plan(StagePlan(STAGE, "svc", "REC"))
    for t in (0.0, 1.0, 2.0):
        await step(deployer, clock, t)
    assert len(calls) == 2
    errors = [d for d in deployer.decisions if d.action == "error"]
    assert errors and "no capacity" in errors[0].reason
    for t in (3.0, 5.0):                    # the second failure doubles the wait
        await step(deployer, clock, t)
    assert len(calls) == 2 and deployer.decisions[-1].code == "start_backoff"
    await step(deployer, clock, 6.0)
    assert len(calls) == 3


async def test_instances_that_die_or_never_start_are_reaped() -> None:
    rec = Recorder()
    registry = InstanceRegistry(expiry_beats=1)
    deployer, _, _, clock = make(rec, registry=registry, start_timeout=5.0, deploy_delay=0.0,
                                 startup_grace=0.0)
    await step(deployer, clock, 1.0)          # deploys i0 (below min)
    registry.on_heartbeat(beat("i0"), 1.5)
    await step(deployer, clock, 2.0)
    registry.expire(10.0)                    # i0 went silent
    await step(deployer, clock, 10.0)        # reaps i0, deploys i1
    await deployer.idle()
    assert "i0" in rec.stopped and rec.started == ["i0", "i1"]
    await step(deployer, clock, 16.0)        # i1 never beat: stopped after start_timeout
    await deployer.idle()
    assert "i1" in rec.stopped


async def test_stop_stops_every_instance_it_started() -> None:
    rec = Recorder()
    deployer, registry, _, clock = make(rec, deploy_delay=0.0, startup_grace=0.0)
    await step(deployer, clock, 1.0)
    registry.on_heartbeat(beat("i0"), 1.0)
    await deployer.stop()
    assert rec.stopped == ["i0"]


async def test_set_plan_updates_limits() -> None:
    rec = Recorder()
    deployer, _, _, _ = make(rec)
    deployer.set_plan(StagePlan(STAGE, "svc", "REC", min_instance=0, max_instance=5))
    plan = deployer.plan(STAGE)
    assert plan is not None and plan.max_instance == 5
    assert stage_status(deployer).max_instance == 5


async def test_partitions_are_added_ahead_while_idle_once_the_topic_exists() -> None:
    rec = Recorder()
    deployer, registry, admin, clock = make(rec, partitions_ahead=True)
    del admin.counts["in"]  # the stage has not created its topic yet
    await step(deployer, clock, 0.0)
    assert "in" not in admin.counts
    admin.counts["in"] = 1
    await step(deployer, clock, 2.0)   # too soon to retry
    assert admin.counts["in"] == 1
    await step(deployer, clock, 5.0)
    assert admin.counts["in"] == 3     # max_instance, before any scale-out
    registry.on_heartbeat(beat("external"), 5.0)
    deployer.set_plan(StagePlan(STAGE, "svc", "REC", min_instance=1, max_instance=4))
    await step(deployer, clock, 6.0)
    assert admin.counts["in"] == 4     # a raised limit is provisioned too


async def test_waiting_for_the_reader_starts_the_grace_at_the_first_batch() -> None:
    rec = Recorder()
    scripts = DeployScripts()
    scripts.set_deploy_functions("REC", rec)
    deployer = AutoDeployer(scripts, InstanceRegistry(),
                            DeployerSettings(startup_grace=3.0, partitions_ahead=False),
                            clock=Clock(), wait_for_reader=True)
    deployer.set_plan(StagePlan(STAGE, "svc", "REC", min_instance=1, max_instance=3))
    for t in (0.0, 5.0, 10.0):  # the master's consumer is still joining its group
        await deployer.tick(t)
        await settle(deployer)
    assert rec.started == []
    deployer.reading_from(10.0)
    await deployer.tick(12.0)
    await settle(deployer)
    assert rec.started == []  # the grace runs from the first batch
    await deployer.tick(13.0)
    await settle(deployer)
    assert rec.started == ["i0"]


@dataclass
class FailingStops(Recorder):
    """A recorder whose stop handles fail the first ``failures`` times they are called."""

    failures: int = 1
    attempts: list[str] = field(default_factory=list)

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        instance_id = f"i{next(self.ids)}"
        self.started.append(instance_id)

        def stop() -> None:
            self.attempts.append(instance_id)
            if len(self.attempts) <= self.failures:
                raise OSError("provider hiccup")
            self.stopped.append(instance_id)

        return DeployResult(instance_id, stop)


async def test_a_failed_scale_in_keeps_the_instance_and_stop_stops_it_later() -> None:
    rec = FailingStops(failures=1)
    deployer, registry, _, clock = make(rec, startup_grace=0.0, deploy_delay=0.0)
    for _ in range(2):
        await deployer.act(STAGE, Decision(Action.SCALE_OUT, "test", "two to start with", 2))
    for name in rec.started:
        registry.on_heartbeat(beat(name), 0.0)
    await step(deployer, clock, 0.0)
    await deployer.act(STAGE, Decision(Action.SCALE_IN, "too_many", "test", 1))
    assert rec.attempts == ["i1"] and rec.stopped == []
    assert stage_status(deployer).deployed == ["i0", "i1"]
    assert not registry.is_retired("i1")   # its next beat counts it again
    await deployer.stop()
    assert sorted(rec.stopped) == ["i0", "i1"]


async def test_a_dead_instance_whose_stop_fails_is_kept_and_stopped_again() -> None:
    rec = FailingStops(failures=2)
    registry = InstanceRegistry(expiry_beats=1)
    deployer, _, _, clock = make(rec, registry=registry, deploy_delay=1.0, startup_grace=0.0)
    await step(deployer, clock, 0.0)           # deploys i0
    registry.on_heartbeat(beat("i0"), 0.5)
    await step(deployer, clock, 1.0)
    registry.expire(5.0)                       # i0 went silent
    await step(deployer, clock, 5.0)           # stopping i0 fails
    await deployer.idle()
    assert rec.attempts == ["i0"]
    assert stage_status(deployer).unstopped == ["i0"]
    await step(deployer, clock, 5.5)           # too soon: no retry yet
    await deployer.idle()
    assert rec.attempts == ["i0"]
    await step(deployer, clock, 8.0)           # fails again, waits longer
    await deployer.idle()
    assert rec.attempts == ["i0", "i0"]
    await step(deployer, clock, 20.0)
    await deployer.idle()
    assert "i0" in rec.stopped
    assert stage_status(deployer).unstopped == []


async def test_a_service_that_never_starts_is_redeployed_with_growing_backoff() -> None:
    rec = Recorder()
    deployer, registry, _, clock = make(rec, start_timeout=5.0, deploy_delay=0.0,
                                        startup_grace=0.0)
    await step(deployer, clock, 0.0)            # i0 (below min)
    await step(deployer, clock, 6.0)            # i0 never beat: back off 5 s
    assert rec.started == ["i0"]
    assert deployer.decisions[-1].code == "start_backoff"
    assert "no heartbeat within start_timeout" in deployer.decisions[-1].reason
    await step(deployer, clock, 10.0)
    assert rec.started == ["i0"]
    await step(deployer, clock, 11.0)           # i1
    await step(deployer, clock, 17.0)           # i1 never beat: back off 10 s
    await step(deployer, clock, 26.0)
    assert rec.started == ["i0", "i1"]
    await step(deployer, clock, 27.0)           # i2, which starts
    registry.on_heartbeat(beat("i2"), 27.5)
    await step(deployer, clock, 28.0)
    assert rec.started == ["i0", "i1", "i2"]
    assert deployer.inputs(STAGE, 28.0).backoff_until == float("-inf")  # backoff over
