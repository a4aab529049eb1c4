"""Observer and HeartbeatReporter on a real broker: what a master would read."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer

from fogverse.control import (
    AutoScaleRequest,
    ControlMessage,
    Heartbeat,
    InstanceStopping,
    decode_control,
)
from fogverse.heartbeat import HeartbeatReporter, Totals
from fogverse.observer import InstanceInfo, Observer

pytestmark = pytest.mark.kafka


def read_control(
    servers: str, topic: str, until: Callable[[list[ControlMessage]], bool],
    timeout: float = 30.0,
) -> list[ControlMessage]:
    """Every control message on ``topic`` from the start, until ``until`` holds."""
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"{topic}-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen: list[ControlMessage] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(seen):
            assert time.monotonic() < deadline, f"only got {seen}"
            for msg in consumer.consume(100, 0.5):
                if msg.error() is None:
                    seen.append(decode_control(msg.value()))
    finally:
        consumer.close()
    return seen


def info(topic_in: str | None = "in", topic_out: str | None = "out") -> InstanceInfo:
    return InstanceInfo("inst-1", "svc", topic_in, topic_out, "grp", "node-a")


def bodies(messages: list[ControlMessage], kind: type) -> list[Any]:
    return [m.body for m in messages if isinstance(m.body, kind)]


def test_fogverse_calls_are_coalesced_and_never_block(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    topic = unique("control")
    observer = Observer(topic, kafka_bootstrap, info=info(None, None), min_interval=60.0)
    observer.send_auto_scale_request(
        "in", "out", {"provider": "LOCAL", "service_name": "svc", "max_instance": 3,
                      "extra_configs": {"test": "halo"}},
    )
    for _ in range(1000):  # FogVerse style: one call per message sent
        observer.send_heartbeat("out", total_messages=1)
    observer.close()
    seen = read_control(kafka_bootstrap, topic, lambda s: len(bodies(s, Heartbeat)) >= 1)
    [request] = bodies(seen, AutoScaleRequest)
    assert request == AutoScaleRequest("in", "out", "svc", "LOCAL", 3, None, {"test": "halo"},
                                       "grp")
    [beat] = bodies(seen, Heartbeat)  # a thousand calls, one message
    assert (beat.consumed, beat.produced, beat.source_topic, beat.target_topic) == (
        1000, 1000, "in", "out")
    assert all(m.sender == "inst-1" for m in seen)


def test_reporter_sends_deltas_request_and_goodbye(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    topic = unique("control")
    counts = {"consumed": 0, "produced": 0}
    stop_counting = threading.Event()

    def count() -> None:
        while not stop_counting.is_set():
            counts["consumed"] += 10
            counts["produced"] += 5
            time.sleep(0.01)

    counter = threading.Thread(target=count)
    counter.start()
    reporter = HeartbeatReporter(
        Observer(topic, kafka_bootstrap, info=info()),
        lambda: Totals(counts["consumed"], counts["produced"], 0.0),
        interval=0.2, deploy_config={"provider": "LOCAL", "service_name": "svc",
                                     "max_instance": 2},
    )
    reporter.start()
    while reporter.beats < 5:
        time.sleep(0.05)
    stop_counting.set()
    counter.join()
    reporter.close("test over")
    seen = read_control(kafka_bootstrap, topic,
                        lambda s: bool(bodies(s, InstanceStopping)))
    beats = bodies(seen, Heartbeat)
    assert sum(b.consumed for b in beats) == counts["consumed"]
    assert sum(b.produced for b in beats) == counts["produced"]
    assert all(b.interval > 0 and b.group_id == "grp" for b in beats)
    assert bodies(seen, AutoScaleRequest)[0].max_instance == 2
    assert bodies(seen, InstanceStopping) == [
        InstanceStopping("inst-1", "svc", "in", "out", "test over")]


async def test_reporter_as_a_background_task_says_goodbye_when_cancelled(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    topic = unique("control")
    reporter = HeartbeatReporter(Observer(topic, kafka_bootstrap, info=info()),
                                 lambda: Totals(1, 1), interval=0.1)
    task = reporter.run_in_background()
    while reporter.beats < 2:
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    seen = await asyncio.to_thread(
        read_control, kafka_bootstrap, topic, lambda s: bool(bodies(s, InstanceStopping)))
    assert bodies(seen, Heartbeat)


def test_an_unreachable_broker_never_blocks_or_raises() -> None:
    observer = Observer("control", "127.0.0.1:1", info=info(),
                        extra={"queue.buffering.max.messages": 5})
    results = [observer.heartbeat(1, 1, 1.0) for _ in range(20)]
    assert results.count(False) == observer.dropped >= 15
    observer.close(timeout=0.5)  # returns although nothing can be delivered


@pytest.mark.parametrize(("concurrency", "busy"), [(1, 8.0), (16, 0.5)])
def test_a_stage_reports_the_share_of_its_places_in_use(concurrency: int, busy: float) -> None:
    from fogverse import Consumer
    from fogverse.heartbeat import reporter_for_stage

    stage = Consumer(consumer_topic="in", producer_topic="out", consumer_servers="127.0.0.1:1",
                     concurrency=concurrency)
    # 8 s of process() in overlapping awaits: 16 places half full, or one place 8x over.
    stage.stats.step_seconds["process"] = 8.0
    reporter = reporter_for_stage(stage)
    try:
        assert reporter._read().processing_seconds == busy
    finally:
        reporter.observer.close(timeout=0.1)


@pytest.mark.parametrize("given_as", ["attribute", "setting"])
async def test_a_runtime_stage_heartbeats_and_sends_its_request_by_itself(
    kafka_bootstrap: str, unique: Callable[[str], str], given_as: str
) -> None:
    from fogverse import Consumer

    control, source, target = unique("control"), unique("in"), unique("out")
    deploy = {"provider": "LOCAL", "service_name": "svc", "max_instance": 3}

    class Stage(Consumer):
        if given_as == "attribute":
            deploy_config = deploy

    setting = {"deploy_config": deploy} if given_as == "setting" else {}
    stage = Stage(consumer_topic=source, producer_topic=target, consumer_servers=kafka_bootstrap,
                  control_topic=control, group_id=unique("g"), idle_timeout=2.5,
                  heartbeat_interval=0.5, **setting)
    await stage.run()
    seen = await asyncio.to_thread(
        read_control, kafka_bootstrap, control, lambda s: bool(bodies(s, InstanceStopping)))
    [request] = bodies(seen, AutoScaleRequest)
    assert (request.source_topic, request.target_topic, request.max_instance) == (
        source, target, 3)
    beats = bodies(seen, Heartbeat)
    assert len(beats) >= 2 and all(b.service_name == "Stage" for b in beats)
