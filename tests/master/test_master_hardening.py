"""A master no record can crash or fool (issue 10, findings 1, 2, 5, 6), on a real broker.

Each test writes what a hostile or broken writer would to the state or control
topic, and checks what the master then does: what it deploys, what partitions
it adds, what it counts and says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
from confluent_kafka import Producer

from deploy_scripts import DeployConfig, DeployResult, DeployScripts
from fogverse.admin import KafkaAdmin
from fogverse.control import AutoScaleRequest, Heartbeat, encode_control
from master import AutoScaleComponent, Master
from master.plans import StagePlan
from master.state_records import encode_record, plan_body
from tests.polling import wait_until

KEY = b"s3cret"


class Recorder:
    """A user deploy function that records what it is asked to start."""

    def __init__(self) -> None:
        self.configs: list[DeployConfig] = []

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        self.configs.append(config)
        return DeployResult(f"rec-{len(self.configs)}", lambda: None)


def conf_for(servers: str, unique: Callable[[str], str], **extra: Any) -> dict[str, Any]:
    return {
        "consumer_topic": unique("control"), "consumer_servers": servers,
        "consumer_group_id": unique("master"), "http_port": None,
        "state_topic": unique("state"), "included_worker": ["AUTO_DEPLOYER"],
        "auto_deployer_config": {"startup_grace": 0, "deploy_delay": 0,
                                 "partitions_ahead": False},
        **extra,
    }


@asynccontextmanager
async def running(conf: dict[str, Any], rec: Recorder) -> AsyncIterator[Master]:
    scripts = DeployScripts()
    scripts.set_deploy_functions("REC", rec)
    master = AutoScaleComponent().master_auto_scaler(conf, scripts)
    await master.start()
    try:
        await asyncio.wait_for(master.ready.wait(), 60)
        yield master
    finally:
        await master.close()


def write(servers: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": servers})
    for key, value in records:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def plan_record(ns: str, plan: StagePlan, key: bytes | None, **change: Any) -> tuple[bytes, bytes]:
    record_key = f"{ns}/{plan.stage[0]}->{plan.stage[1] or '-'}"
    return record_key.encode(), encode_record(record_key, "plan",
                                              {**plan_body(plan), **change}, key)


async def test_a_garbage_state_topic_is_counted_and_skipped_and_the_good_plan_restored(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    conf = conf_for(kafka_bootstrap, unique, services={
        "svc": {"provider": "REC", "min_instance": 0, "max_instance": 3}})
    ns, good = conf["consumer_group_id"], StagePlan(("a", "b"), "svc", "REC", 0, 2)
    admin = KafkaAdmin(kafka_bootstrap)
    await admin.ensure_topic(conf["state_topic"], 1, {"cleanup.policy": "compact"})
    admin.close()
    write(kafka_bootstrap, conf["state_topic"], [
        plan_record(ns, StagePlan(("c", "d"), "svc", "REC", 0, 2), None, source=["c"]),
        plan_record(ns, StagePlan(("e", None), "svc", "REC", 0, 2), None, max=-3),
        plan_record(ns, StagePlan(("f", None), "ghost", "REC", 0, 2), None),
        (f"{ns}/g->-".encode(), b"\xc1 not msgpack"),
        (f"{ns}/h->-".encode(), msgpack.packb({"v": 2, "p": b"\x93"})),
        plan_record(ns, good, None),
    ])
    async with running(conf, Recorder()) as master:
        assert master.deployer is not None
        assert master.deployer.stages() == [("a", "b")]
        assert master.status().master.state_rejected == {
            "bad_field": 2, "undeclared_service": 1, "not_msgpack": 1, "not_a_record": 1}


async def test_with_a_key_an_unsigned_plan_deploys_nothing_and_a_signed_one_is_restored(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    conf = conf_for(kafka_bootstrap, unique, control_key=KEY.decode(), services={
        "svc": {"provider": "REC", "min_instance": 0, "max_instance": 3}})
    ns = conf["consumer_group_id"]
    wants_two = StagePlan(("a", "b"), "svc", "REC", 2, 2)
    write(kafka_bootstrap, conf["state_topic"], [
        plan_record(ns, wants_two, None),
        plan_record(ns, StagePlan(("c", "d"), "svc", "REC", 2, 2), b"not the key"),
        plan_record(ns, StagePlan(("e", "f"), "svc", "REC", 0, 1), KEY),
    ])
    rec = Recorder()
    async with running(conf, rec) as master:
        assert master.deployer is not None
        assert master.deployer.stages() == [("e", "f")]
        assert master.status().master.state_rejected == {"unsigned": 1, "forged": 1}
        assert master.status().master.control_plane == "authenticated"
        await master.tick(time.monotonic())
        assert rec.configs == []


async def test_partitions_are_added_only_to_topics_the_config_declares(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    declared, free, other = unique("declared"), unique("free"), unique("other")
    admin = KafkaAdmin(kafka_bootstrap)
    for topic in (declared, free, other):
        await admin.ensure_topic(topic, 1)
    conf = conf_for(kafka_bootstrap, unique, services={
        "pinned": {"provider": "REC", "min_instance": 2, "max_instance": 2,
                   "source_topic": declared, "target_topic": "out"},
        "loose": {"provider": "REC", "min_instance": 2, "max_instance": 2},
    })
    rec = Recorder()
    try:
        async with running(conf, rec) as master:
            write(kafka_bootstrap, conf["consumer_topic"], [
                (None, encode_control(AutoScaleRequest(other, "out", "pinned", "REC", 2), "x")),
                (None, encode_control(AutoScaleRequest(free, "out", "loose", "REC", 2), "y")),
            ])
            await wait_until(lambda: master.status().master.refused == {"topic_mismatch": 1},
                             what="the request naming other topics to be refused")
            await wait_until(lambda: len(rec.configs) == 4, timeout=60,
                             what="two instances of each service")
            assert await admin.partition_count(declared) == 2
            assert await admin.partition_count(free) == 1     # a request alone: untouched
            assert await admin.partition_count(other) == 1
    finally:
        admin.close()


async def test_future_dated_and_replayed_messages_are_dropped(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    conf = conf_for(kafka_bootstrap, unique, control_key=KEY.decode(), services={
        "svc": {"provider": "REC", "min_instance": 0, "max_instance": 3}})
    request = encode_control(AutoScaleRequest("a", "b", "svc", "REC", 2), "inst", KEY)
    beat = encode_control(Heartbeat("i1", "svc", "a", "b"), "i1", KEY)
    ahead = encode_control(Heartbeat("i2", "svc", "a", "b"), "i2", KEY,
                           sent_at=time.time() + 3600)
    async with running(conf, Recorder()) as master:
        write(kafka_bootstrap, conf["consumer_topic"],
              [(None, m) for m in (request, beat, ahead, request, beat)])
        await wait_until(lambda: sum(master.status().master.malformed.values()) == 3,
                         what="three dropped messages")
        summary = master.status().master
        assert summary.malformed == {"future": 1, "replayed": 2}
        assert summary.messages == {"auto_scale_request": 1, "heartbeat": 1}
        assert master.registry.get("i2") is None


async def test_without_a_key_the_master_warns_and_status_says_unauthenticated(
    kafka_bootstrap: str, unique: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "fogverse.master")
    async with running(conf_for(kafka_bootstrap, unique), Recorder()) as master:
        assert master.status().master.control_plane == "unauthenticated"
    assert any("control plane is unauthenticated" in r.getMessage() for r in caplog.records)
