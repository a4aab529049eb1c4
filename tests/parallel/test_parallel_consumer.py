"""ParallelConsumer on the real broker with real worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import TopicPartition

from fogverse import StageError
from fogverse.parallel import ParallelConsumer, Processor
from tests.conftest import create_topic
from tests.kafka_io import MSGPACK, Record, produce, read
from tests.parallel.procs import Echo, Jitter, Picky, Poison, SlowZero, Tagged
from tests.polling import wait_until

pytestmark = pytest.mark.kafka


def _committed(servers: str, group: str, topic: str, partitions: int) -> list[int]:
    reader = KafkaConsumer({"bootstrap.servers": servers, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [tp.offset for tp in reader.committed(tps, timeout=10)]
    finally:
        reader.close()


def _stage(processor: Processor, src: str, dst: str | None, servers: str, group: str,
           **settings: Any) -> ParallelConsumer:
    return ParallelConsumer(processor=processor, consumer_topic=src, producer_topic=dst,
                            consumer_servers=servers, group_id=group, heartbeat=False,
                            **settings)


def _by_partition_of_input(records: list[Record], key: str = "n") -> dict[bytes, list[int]]:
    out: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        assert record.key is not None
        out[record.key].append(int(record.header(key) or b"-1"))
    return out


async def test_each_output_keeps_its_inputs_key_and_headers_and_order_per_partition(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("par-in"), 3), create_topic(admin, unique("par-out"))
    count = 600
    keys = [f"k{i % 6}".encode() for i in range(count)]
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(count)), keys,
            headers=[[*MSGPACK, ("n", str(i).encode())] for i in range(count)])
    group = unique("par")
    # Jitter answers out of order on purpose.
    stage = _stage(Jitter(), src, dst, kafka_bootstrap, group, process_number=2,
                   max_running_task=12, max_messages=count)
    await asyncio.wait_for(stage.run(), 90)

    out = read(kafka_bootstrap, dst, count)
    assert len(out) == count
    for record in out:
        n = int(record.header("n") or b"-1")
        assert record.data == n, "an output carries another input's headers"
        assert record.key == keys[n], "an output carries another input's key"
    for key, ns in _by_partition_of_input(out).items():
        assert ns == sorted(ns), f"order broken for {key!r}"
    ends = [admin_high(kafka_bootstrap, src, p) for p in range(3)]
    assert _committed(kafka_bootstrap, group, src, 3) == ends


def admin_high(servers: str, topic: str, partition: int) -> int:
    reader = KafkaConsumer({"bootstrap.servers": servers, "group.id": "watermarks"})
    try:
        return int(reader.get_watermark_offsets(TopicPartition(topic, partition), 10)[1])
    finally:
        reader.close()


async def test_sigkill_of_a_worker_mid_run_loses_nothing(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("kill-in"), 2), create_topic(admin, unique("kill-out"))
    count = 300
    keys = [f"k{i % 4}".encode() for i in range(count)]
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(count)), keys,
            headers=[[*MSGPACK, ("n", str(i).encode())] for i in range(count)])
    stage = _stage(Tagged(delay=0.005), src, dst, kafka_bootstrap, unique("kill"),
                   process_number=2, max_messages=count)
    running = asyncio.create_task(stage.run())
    await wait_until(lambda: stage.stats.acked >= 40 or running.done(), what="40 acked messages")
    assert not running.done(), running
    victim = stage.worker_pids[0]
    os.kill(victim, signal.SIGKILL)
    await asyncio.wait_for(running, 90)

    out = read(kafka_bootstrap, dst, count)
    assert sorted(r.data["in"] for r in out) == list(range(count))  # type: ignore[index]
    assert len(out) == count, "a message was sent twice"
    assert victim in {r.data["pid"] for r in out}  # type: ignore[index]
    for key, ns in _by_partition_of_input(out).items():
        assert ns == sorted(ns), f"order broken for {key!r} after the kill"


async def test_setup_runs_once_per_worker_process(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("setup-in"), 2), create_topic(admin, unique("setup-o"))
    count = 200
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(count)),
            [f"k{i % 4}".encode() for i in range(count)])
    stage = _stage(Tagged(), src, dst, kafka_bootstrap, unique("setup"), process_number=2,
                   max_messages=count)
    await asyncio.wait_for(stage.run(), 90)

    out = [r.data for r in read(kafka_bootstrap, dst, count)]
    assert len(out) == count
    assert {o["setups"] for o in out} == {1}  # type: ignore[index]
    assert len({o["pid"] for o in out}) <= 2  # type: ignore[index]


async def test_a_poison_message_that_crashes_workers_is_dead_lettered_and_the_stage_goes_on(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("poi-in")), create_topic(admin, unique("poi-out"))
    items: list[Any] = list(range(60))
    items[20] = "poison"
    values = [msgpack.packb(i) for i in items]
    produce(kafka_bootstrap, src, values)
    stage = _stage(Poison(), src, dst, kafka_bootstrap, unique("poi"), process_number=2,
                   max_messages=len(items))
    await asyncio.wait_for(stage.run(), 90)

    out = [r.data for r in read(kafka_bootstrap, dst, 59)]
    assert out == [i for i in items if i != "poison"]
    (dead,) = read(kafka_bootstrap, f"fogverse-dlq-{src}", 1)
    assert dead.value == values[20], "the dead letter must carry the original bytes"
    assert dead.header("fogverse-origin-offset") == b"20"
    assert dead.header("fogverse-error-type") == b"WorkerCrashedError"
    reason = (dead.header("fogverse-error") or b"").decode()
    assert "SIGSEGV" in reason and "2 times" in reason
    assert stage.stats.dead_lettered == 1


async def test_an_exception_in_process_is_dead_lettered_with_its_own_type(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("exc-in")), create_topic(admin, unique("exc-out"))
    items = [1, 2, -3, 4]
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in items))
    stage = _stage(Picky(), src, dst, kafka_bootstrap, unique("exc"), process_number=1,
                   max_messages=len(items))
    await asyncio.wait_for(stage.run(), 90)

    assert [r.data for r in read(kafka_bootstrap, dst, 3)] == [2, 4, 8]
    (dead,) = read(kafka_bootstrap, f"fogverse-dlq-{src}", 1)
    assert dead.header("fogverse-error-type") == b"ValueError"
    assert b"process: ValueError: negative input -3" in (dead.header("fogverse-error") or b"")


async def test_fogverse_run_shape_and_commits_stop_at_the_first_unfinished_input(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("stop-in")), create_topic(admin, unique("stop-out"))
    items = list(range(1, 101))
    items[30] = -1
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in items))
    group = unique("stop")
    stage = ParallelConsumer(consumer_topic=src, producer_topic=dst, group_id=group,
                             consumer_servers=kafka_bootstrap, error_policy="stop",
                             heartbeat=False)
    with pytest.raises(StageError, match="negative input"):
        await asyncio.wait_for(stage.run(2, 4, Picky()), 90)

    (position,) = _committed(kafka_bootstrap, group, src, 1)
    assert 0 <= position <= 30, "committed past the input that failed"
    delivered = [r.data for r in read(kafka_bootstrap, dst, position, settle=0.5)]
    assert delivered[:position] == [2 * i for i in items[:position]]


async def test_thread_executor_unordered_delivers_everything(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("thr-in"), 2), create_topic(admin, unique("thr-out"))
    count = 300
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(count)),
            [f"k{i % 4}".encode() for i in range(count)])
    stage = _stage(Echo(), src, dst, kafka_bootstrap, unique("thr"), executor="thread",
                   ordered=False, process_number=3, max_messages=count)
    await asyncio.wait_for(stage.run(), 90)
    out = read(kafka_bootstrap, dst, count)
    assert sorted(r.data for r in out) == list(range(count))  # type: ignore[type-var]
    assert stage.worker_pids == []


async def test_unordered_emits_as_answers_come_and_ordered_waits(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src = create_topic(admin, unique("ord-in"))
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(50)))
    firsts = {}
    for ordered in (True, False):
        dst = create_topic(admin, unique("ord-out"))
        stage = _stage(SlowZero(), src, dst, kafka_bootstrap, unique("ord"), process_number=2,
                       ordered=ordered, max_messages=50)
        await asyncio.wait_for(stage.run(), 90)
        out = [r.data for r in read(kafka_bootstrap, dst, 50)]
        assert sorted(out) == list(range(50))  # type: ignore[type-var]
        firsts[ordered] = out[0]
    assert firsts[True] == 0, "ordered output must start with the first input"
    assert firsts[False] != 0, "unordered output waited for the slow first input"


async def test_at_most_max_running_task_messages_are_held(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("bp-in")), create_topic(admin, unique("bp-out"))
    count = 150
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(count)))
    stage = _stage(Tagged(delay=0.01), src, dst, kafka_bootstrap, unique("bp"),
                   process_number=2, max_running_task=3, max_messages=count)
    running = asyncio.create_task(stage.run())
    held = []
    while not running.done():
        # Read but not yet sent on: what the stage holds in memory.
        held.append(stage.stats.consumed - stage.stats.produced)
        await asyncio.sleep(0.002)
    await running
    assert max(held) <= 3
    assert max(held) == 3, "the bound was never reached; the test proves nothing"
    assert len(read(kafka_bootstrap, dst, count)) == count


class Collect(ParallelConsumer):
    """A sink whose send() suspends midway, as a real one writing to a database."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.got: list[tuple[bytes | None, bytes | None, Any]] = []
        self.hooked = 0

    async def _before_send(self, data: bytes) -> None:
        await asyncio.sleep(0)
        self.hooked += 1

    async def send(self, data: bytes, topic: str | None = None, key: bytes | None = None,
                   headers: Any = None, callback: Any = None) -> None:
        message = self.message
        assert message is not None
        await asyncio.sleep(0.001)
        assert self.message is message, "another message took over self.message"
        self.got.append((message.key, message.header("n"), msgpack.unpackb(data)))


async def test_a_sink_that_suspends_in_send_sees_each_messages_own_context(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src = create_topic(admin, unique("sink-in"), 2)
    count = 200
    keys = [f"k{i % 4}".encode() for i in range(count)]
    produce(kafka_bootstrap, src, (msgpack.packb(i) for i in range(count)), keys,
            headers=[[*MSGPACK, ("n", str(i).encode())] for i in range(count)])
    stage = Collect(processor=Jitter(), process_number=2, consumer_topic=src,
                    consumer_servers=kafka_bootstrap, group_id=unique("sink"),
                    max_messages=count, heartbeat=False)
    await asyncio.wait_for(stage.run(), 90)

    assert len(stage.got) == count and stage.hooked == count
    per_key: dict[bytes | None, list[int]] = defaultdict(list)
    for key, n, data in stage.got:
        assert n == str(data).encode() and key == keys[data]
        per_key[key].append(data)
    assert all(seq == sorted(seq) for seq in per_key.values())
