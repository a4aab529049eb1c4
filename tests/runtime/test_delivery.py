"""Delivery through real stages on the real broker: nothing lost, order kept."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from fogverse import Consumer, Producer
from tests.conftest import create_topic
from tests.kafka_io import produce_msgpack, read
from tests.polling import wait_until

pytestmark = pytest.mark.kafka


class Numbers(Producer):
    """Source: ``count`` readings keyed by one of ``keys`` sensors."""

    def __init__(self, count: int, keys: int, **settings: Any) -> None:
        super().__init__(max_messages=count, **settings)
        self.seq = 0
        self.keys = keys

    def receive(self) -> dict[str, int]:
        self.seq += 1
        sensor = self.seq % self.keys
        assert self.message is not None
        self.message.key = f"k{sensor}".encode()
        return {"sensor": sensor, "seq": self.seq}


class AddHop(Consumer):
    """Stage: records which stages a message passed."""

    def process(self, data: dict[str, Any]) -> dict[str, Any]:
        data.setdefault("hops", []).append(self.name)
        return data


async def test_keyed_order_is_kept_through_three_stages(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    a, b, c = (create_topic(admin, unique(t), partitions=3) for t in ("ord-a", "ord-b", "ord-c"))
    common = {"consumer_servers": kafka_bootstrap, "heartbeat": False}
    count = 3000
    source = Numbers(count, keys=12, producer_topic=a, **common)
    first = AddHop(consumer_topic=a, producer_topic=b, group_id=unique("g1"),
                   max_messages=count, **common)
    second = AddHop(consumer_topic=b, producer_topic=c, group_id=unique("g2"),
                    max_messages=count, **common)
    await asyncio.wait_for(asyncio.gather(source.run(), first.run(), second.run()), 120)

    out = read(kafka_bootstrap, c, count)
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in out:
        assert record.key is not None
        by_key[record.key].append(record.data["seq"])  # type: ignore[index]
    assert len(out) == count
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"order broken for {key!r}"
        assert all(s % 12 == int(key[1:]) for s in seqs), "a message changed key"


async def test_ten_thousand_messages_arrive_exactly_once_in_a_clean_run(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src, dst = create_topic(admin, unique("once-in"), 2), create_topic(admin, unique("once-out"))
    count = 10_000
    produce_msgpack(kafka_bootstrap, src, ({"id": i} for i in range(count)))
    stage = AddHop(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                   group_id=unique("once"), max_messages=count, heartbeat=False)
    await asyncio.wait_for(stage.run(), 120)

    ids = [r.data["id"] for r in read(kafka_bootstrap, dst, count)]  # type: ignore[index]
    assert len(ids) == count
    assert sorted(ids) == list(range(count))
    assert stage.stats.commits >= 1


async def test_outputs_keep_their_own_inputs_key_and_headers(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src, dst = create_topic(admin, unique("hdr-in")), create_topic(admin, unique("hdr-out"))
    from tests.kafka_io import produce

    count = 500
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(count)),
            keys=[f"key-{i}".encode() for i in range(count)],
            headers=[[("content-type", b"application/msgpack"), ("trace", f"t{i}".encode())]
                     for i in range(count)])

    class SlowAsync(Consumer):
        async def process(self, data: int) -> int:
            if data % 50 == 0:
                await asyncio.sleep(0.01)
            return data * 2

    stage = SlowAsync(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                      group_id=unique("hdr"), max_messages=count, heartbeat=False)
    await asyncio.wait_for(stage.run(), 60)

    out = read(kafka_bootstrap, dst, count)
    assert len(out) == count
    for record in out:
        i = record.data // 2  # type: ignore[operator]
        assert record.key == f"key-{i}".encode()
        assert record.header("trace") == f"t{i}".encode()
        assert record.header("content-type") == b"application/msgpack"


async def test_sink_send_receives_every_message_and_commits(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src = create_topic(admin, unique("sink-in"))
    produce_msgpack(kafka_bootstrap, src, range(300))
    group = unique("sink")

    class Collect(Consumer):
        def __init__(self, **settings: Any) -> None:
            super().__init__(**settings)
            self.got: list[int] = []

        async def send(self, data: bytes, *args: Any, **kwargs: Any) -> None:
            self.got.append(msgpack.unpackb(data))

    settings = {"consumer_topic": src, "consumer_servers": kafka_bootstrap, "group_id": group,
                "heartbeat": False}
    sink = Collect(max_messages=300, **settings)
    await asyncio.wait_for(sink.run(), 60)
    assert sink.got == list(range(300))

    produce_msgpack(kafka_bootstrap, src, range(300, 310))
    again = Collect(idle_timeout=3, **settings)
    await asyncio.wait_for(again.run(), 60)
    assert again.got == list(range(300, 310)), "committed inputs were read again"


async def test_fogverse_hooks_run_around_each_step(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("hook-in")), create_topic(admin, unique("hook-out"))
    produce_msgpack(kafka_bootstrap, src, range(5))
    calls: list[str] = []

    class Hooked(Consumer):
        def _before_process(self, data: int) -> None:
            calls.append("before_process")

        def _after_process(self, result: int) -> int:
            calls.append("after_process")
            return result + 100

        async def _after_send(self, data: bytes) -> None:
            calls.append("after_send")

    stage = Hooked(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                   group_id=unique("hook"), max_messages=5, heartbeat=False)
    await asyncio.wait_for(stage.run(), 60)
    assert calls == ["before_process", "after_process", "after_send"] * 5
    assert sorted(r.data for r in read(kafka_bootstrap, dst, 5)) == [100, 101, 102, 103, 104]


async def test_read_latest_skips_the_backlog(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src = create_topic(admin, unique("live"))
    produce_msgpack(kafka_bootstrap, src, range(50))
    seen: list[int] = []

    class Live(Consumer):
        def process(self, data: int) -> None:
            seen.append(data)

    stage = Live(consumer_topic=src, consumer_servers=kafka_bootstrap, group_id=unique("live"),
                 read_latest=True, max_messages=5, heartbeat=False)
    task = asyncio.create_task(stage.run())
    for _ in range(200):
        if stage.consumer is not None and stage.consumer.assignment():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(produce_msgpack, kafka_bootstrap, src, range(1000, 1005))
    await asyncio.wait_for(task, 60)
    assert seen == [1000, 1001, 1002, 1003, 1004]


async def test_read_latest_resumes_where_the_group_committed(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    """Only a new group skips: a partition handed over (or a restart) loses nothing."""
    src = create_topic(admin, unique("live-resume"), partitions=2)
    produce_msgpack(kafka_bootstrap, src, range(20))  # the backlog a new group skips
    seen: list[int] = []

    class Live(Consumer):
        def process(self, data: int) -> None:
            seen.append(data)

    settings = {"consumer_topic": src, "consumer_servers": kafka_bootstrap,
                "group_id": unique("live-resume"), "read_latest": True, "heartbeat": False}
    first = Live(max_messages=10, **settings)
    task = asyncio.create_task(first.run())
    await wait_until(lambda: first.consumer is not None and len(first.consumer.assignment()) == 2,
                     what="both partitions assigned")
    await asyncio.to_thread(produce_msgpack, kafka_bootstrap, src, range(100, 110),
                            [f"k{i}".encode() for i in range(10)])
    await asyncio.wait_for(task, 60)
    assert sorted(seen) == list(range(100, 110))

    # Written while no instance runs: the next owner of the partitions must read it.
    produce_msgpack(kafka_bootstrap, src, range(200, 210), [f"k{i}".encode() for i in range(10)])
    second = Live(max_messages=10, **settings)
    await asyncio.wait_for(second.run(), 60)
    assert sorted(seen) == [*range(100, 110), *range(200, 210)]
