"""A stage built on the runtime reports itself on the control topic, unasked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fogverse import Consumer
from fogverse.control import Heartbeat, InstanceStopping, decode_control
from tests.conftest import create_topic
from tests.kafka_io import produce_msgpack, read

pytestmark = pytest.mark.kafka


class Doubler(Consumer):
    def process(self, data: int) -> int:
        return data * 2


async def test_a_running_stage_heartbeats_and_says_goodbye(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src, dst = create_topic(admin, unique("hb-in")), create_topic(admin, unique("hb-out"))
    control = create_topic(admin, unique("hb-control"))
    produce_msgpack(kafka_bootstrap, src, range(200))
    stage = Doubler(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                    group_id=unique("hb"), control_topic=control, heartbeat_interval=0.2)
    task = asyncio.create_task(stage.run())
    while stage.stats.consumed < 200:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.6)  # a few more beats
    stage.stop()
    await asyncio.wait_for(task, 60)

    bodies = [decode_control(r.value).body for r in read(kafka_bootstrap, control, 3)]
    beats = [b for b in bodies if isinstance(b, Heartbeat)]
    assert beats, "no heartbeat arrived"
    assert {b.source_topic for b in beats} == {src}
    assert {b.target_topic for b in beats} == {dst}
    assert sum(b.consumed for b in beats) == 200
    assert sum(b.produced for b in beats) == 200
    assert isinstance(bodies[-1], InstanceStopping)
