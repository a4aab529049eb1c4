"""concurrency=N: many messages in flight on one loop, order and commits still kept."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from fogverse import Consumer
from tests.conftest import create_topic
from tests.kafka_io import MSGPACK, produce, produce_msgpack, read
from tests.polling import wait_until

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).parents[2]


class Remote(Consumer):
    """process() awaits a 'remote call' of random length; counts how many overlap."""

    def __init__(self, delay: float = 0.005, **settings: Any) -> None:
        super().__init__(**settings)
        self.delay = delay
        self.now = self.most = 0
        self.rng = random.Random(3)

    async def process(self, data: dict[str, Any]) -> dict[str, Any]:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.rng.random() * self.delay)
        finally:
            self.now -= 1
        if data.get("poison"):
            raise ValueError(f"bad input {data['seq']}")
        assert self.message is not None
        data["key"] = (self.message.key or b"").decode()
        return data


async def test_order_is_kept_per_partition_under_random_delays(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src, dst = create_topic(admin, unique("io-in"), 3), create_topic(admin, unique("io-out"))
    count, keys = 600, 12
    produce_msgpack(kafka_bootstrap, src, ({"seq": i} for i in range(count)),
                    [f"k{i % keys}".encode() for i in range(count)])
    stage = Remote(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                   group_id=unique("io"), max_messages=count, concurrency=16, heartbeat=False)
    await asyncio.wait_for(stage.run(), 120)

    out = read(kafka_bootstrap, dst, count)
    assert len(out) == count
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in out:
        data: Any = record.data
        assert record.key is not None and data["key"] == record.key.decode(), \
            "an output took another message's key"
        by_key[record.key].append(data["seq"])
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"order broken for {key!r}"
    assert sorted(s for seqs in by_key.values() for s in seqs) == list(range(count))
    assert stage.most > 1, "messages never overlapped"


async def test_a_failure_in_the_middle_of_a_window_holds_nothing_else_back(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("iof-in")), create_topic(admin, unique("iof-out"))
    count = 40
    items = [{"seq": i, "poison": i == 17} for i in range(count)]
    produce(kafka_bootstrap, src, (msgpack.packb(item) for item in items),
            keys=[b"same"] * count, headers=[MSGPACK] * count)
    group = unique("iof")
    settings: dict[str, Any] = {"consumer_topic": src, "producer_topic": dst, "group_id": group,
                                "consumer_servers": kafka_bootstrap, "concurrency": 8,
                                "heartbeat": False}
    stage = Remote(max_messages=count, **settings)
    await asyncio.wait_for(stage.run(), 60)

    seqs = [r.data["seq"] for r in read(kafka_bootstrap, dst, count - 1)]  # type: ignore[index]
    assert seqs == [i for i in range(count) if i != 17]
    [dead] = read(kafka_bootstrap, f"fogverse-dlq-{src}", 1)
    assert dead.header("fogverse-origin-offset") == b"17"
    again = Remote(idle_timeout=3, **settings)
    await asyncio.wait_for(again.run(), 60)
    assert again.stats.consumed == 0, "everything, the dead letter included, was committed"


async def test_stop_with_a_full_window_drains_it_and_commits(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src, dst = create_topic(admin, unique("ios-in")), create_topic(admin, unique("ios-out"))
    count = 100
    produce_msgpack(kafka_bootstrap, src, ({"seq": i} for i in range(count)))
    settings: dict[str, Any] = {"consumer_topic": src, "producer_topic": dst,
                                "group_id": unique("ios"), "consumer_servers": kafka_bootstrap,
                                "concurrency": 8, "heartbeat": False}
    stage = Remote(delay=0.5, **settings)
    task = asyncio.create_task(stage.run())
    window = None
    await wait_until(lambda: stage._window is not None and stage._window.in_flight == 8,
                     what="a full window")
    window = stage._window
    stage.stop()
    await asyncio.wait_for(task, 60)
    assert window is not None and window.in_flight == 0
    assert stage.stats.produced == stage.stats.consumed >= 8

    rest = Remote(idle_timeout=3, delay=0, **settings)
    await asyncio.wait_for(rest.run(), 60)
    seqs = [r.data["seq"] for r in read(kafka_bootstrap, dst, count)]  # type: ignore[index]
    assert sorted(seqs) == list(range(count)), "lost or duplicated around the stop"


def test_sigkill_with_the_window_full_loses_nothing(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("iok-in"), 2), create_topic(admin, unique("iok-out"))
    count = 2000
    produce_msgpack(kafka_bootstrap, src, ({"id": i} for i in range(count)))
    group = unique("iok")

    def start(*extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("io_stage.py")),
             kafka_bootstrap, src, dst, group, *extra],
            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})

    first = start()
    assert first.stdout is not None and first.stdout.readline().strip() == "started"
    partial = read(kafka_bootstrap, dst, 300, timeout=60, settle=0)
    assert 300 <= len(partial) < count, "the stage was not mid-stream"
    first.send_signal(signal.SIGKILL)
    first.wait(30)

    # The killed member holds its partitions until the broker's session timeout,
    # so the restart runs until every id is out, then stops cleanly.
    second = start()
    try:
        ids = _ids_until(kafka_bootstrap, dst, set(range(count)), timeout=180)
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert ids == set(range(count)), f"lost {sorted(set(range(count)) - ids)[:10]}"


def _ids_until(servers: str, topic: str, wanted: set[int], timeout: float) -> set[int]:
    """Read ``topic`` from the start until every id in ``wanted`` was seen (or timeout)."""
    from confluent_kafka import Consumer as KafkaConsumer

    reader = KafkaConsumer({"bootstrap.servers": servers, "group.id": f"ids-{time.time_ns()}",
                            "auto.offset.reset": "earliest", "enable.auto.commit": False})
    reader.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while not wanted <= seen and time.monotonic() < deadline:
            for msg in reader.consume(500, 0.2):
                if msg.error() is None and msg.value() is not None:
                    seen.add(msgpack.unpackb(msg.value())["id"])
    finally:
        reader.close()
    return seen
