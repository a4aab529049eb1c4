"""A restarted master takes back the instances an earlier one left running.

Real broker, real state topic; the provider is a recording deploy function with
an adopt function (the plugin boundary), whose instances heartbeat on the
control topic for as long as they "run", as real ones do. LOCAL children that
outlive a SIGKILLed master are in test_master_sigkill.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from confluent_kafka import Producer

from deploy_scripts import DeployConfig, DeployResult, DeployScripts
from fogverse.admin import KafkaAdmin
from fogverse.control import AutoScaleRequest, Heartbeat, encode_control
from master import AutoScaleComponent, Master
from master.state import StateStore
from tests.polling import wait_until

STAGE = ("adopt-in", "adopt-out")


class Fleet:
    """What "runs": started by the deploy function, found again by the adopt function."""

    def __init__(self) -> None:
        self.running: dict[str, dict[str, Any]] = {}
        self.started: list[str] = []
        self._ids = itertools.count()

    def deploy(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        instance_id = f"rec-{next(self._ids)}"
        info = {"token": f"t-{instance_id}", "pid": 1000 + len(self.started)}
        self.running[instance_id] = info
        self.started.append(instance_id)
        return self._result(instance_id, info)

    def adopt(self, instance_id: str, info: Mapping[str, Any]) -> DeployResult | None:
        if self.running.get(instance_id) != dict(info):
            return None
        return self._result(instance_id, dict(info))

    def _result(self, instance_id: str, info: dict[str, Any]) -> DeployResult:
        return DeployResult(instance_id, lambda: self.running.pop(instance_id, None), info)

    def scripts(self) -> DeployScripts:
        scripts = DeployScripts()
        scripts.set_deploy_functions("REC", self.deploy)
        scripts.set_adopt_function("REC", self.adopt)
        return scripts


@contextlib.asynccontextmanager
async def heartbeats(servers: str, control: str, fleet: Fleet) -> AsyncIterator[None]:
    """Every running instance beats every half second, whichever master listens."""
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})

    async def beat() -> None:
        while True:
            for instance_id in list(fleet.running):
                hb = Heartbeat(instance_id, "svc", *STAGE, interval=0.5)
                producer.produce(control, encode_control(hb, instance_id), instance_id)
            producer.poll(0)
            await asyncio.sleep(0.5)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        producer.flush(10)


def conf_for(servers: str, unique: Callable[[str], str]) -> dict[str, Any]:
    return {
        "consumer_topic": unique("control"), "consumer_servers": servers,
        "consumer_group_id": unique("master"), "http_port": None,
        "state_topic": unique("state"), "included_worker": ["AUTO_DEPLOYER"],
        "auto_deployer_config": {"startup_grace": 1, "deploy_delay": 0,
                                 "after_heartbeat_delay": 0, "partitions_ahead": False},
        "services": {"svc": {"provider": "REC", "min_instance": 2, "max_instance": 3,
                             "source_topic": STAGE[0], "target_topic": STAGE[1]}},
    }


def bound(master: Master) -> list[str]:
    assert master.deployer is not None
    return sorted(d.live_id for d in master.deployer.instances(STAGE) if d.live_id)


async def test_a_restarted_master_adopts_what_runs_deploys_no_duplicate_and_scales_on(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    conf, fleet = conf_for(kafka_bootstrap, unique), Fleet()
    async with heartbeats(kafka_bootstrap, conf["consumer_topic"], fleet):
        first = AutoScaleComponent().master_auto_scaler({**conf, "leave_running": True},
                                                        fleet.scripts())
        await first.start()
        await wait_until(lambda: len(bound(first)) == 2, timeout=60,
                         what="two instances started and heartbeating")
        await first.close()                      # leaves them running, records kept
        assert sorted(fleet.running) == ["rec-0", "rec-1"]

        second = AutoScaleComponent().master_auto_scaler(conf, fleet.scripts())
        await second.start()
        try:
            assert second.deployer is not None
            assert sorted(d.deploy_id for d in second.deployer.instances(STAGE)) == [
                "rec-0", "rec-1"]              # adopted at start, before any heartbeat
            await wait_until(lambda: bound(second) == ["rec-0", "rec-1"], timeout=60,
                             what="the adopted instances to heartbeat")
            assert fleet.started == ["rec-0", "rec-1"]   # no duplicate

            # Scaling goes on: a request raising the floor to 3 starts one more.
            request = AutoScaleRequest(*STAGE, "svc", "REC", 3, min_instance=3)
            producer = Producer({"bootstrap.servers": kafka_bootstrap})
            producer.produce(conf["consumer_topic"], encode_control(request, "rec-0"))
            producer.flush(10)
            await wait_until(lambda: len(bound(second)) == 3, timeout=60, what="a third")
        finally:
            await second.close()                 # a normal stop stops all, adopted too
    assert fleet.running == {} and fleet.started == ["rec-0", "rec-1", "rec-2"]
    store = StateStore(kafka_bootstrap, conf["consumer_group_id"], conf["state_topic"])
    admin = KafkaAdmin(kafka_bootstrap)
    try:
        assert (await store.load(admin)).instances == []   # nothing left to adopt
    finally:
        admin.close()


async def test_an_instance_that_is_gone_is_not_adopted_and_is_replaced(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    conf, fleet = conf_for(kafka_bootstrap, unique), Fleet()
    async with heartbeats(kafka_bootstrap, conf["consumer_topic"], fleet):
        first = AutoScaleComponent().master_auto_scaler({**conf, "leave_running": True},
                                                        fleet.scripts())
        await first.start()
        await wait_until(lambda: len(bound(first)) == 2, timeout=60, what="two instances")
        await first.close()
        fleet.running.pop("rec-1")               # it died while no master watched
        second = AutoScaleComponent().master_auto_scaler(conf, fleet.scripts())
        await second.start()
        try:
            assert second.deployer is not None
            assert [d.deploy_id for d in second.deployer.instances(STAGE)] == ["rec-0"]
            await wait_until(lambda: bound(second) == ["rec-0", "rec-2"], timeout=60,
                             what="the gone instance replaced")
        finally:
            await second.close()
