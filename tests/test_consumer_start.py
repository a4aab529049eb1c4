"""ConsumerStart against the real broker and a real lock service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from confluent_kafka import Consumer

from fogverse.admin import KafkaAdmin
from fogverse.consumer_start import LOCK_KEY_PREFIX, ConsumerStart
from fogverse.lock import DistributedLock, LockTimeoutError, LockUnavailableError
from workers.distributed_lock import DistributedLockWorker

pytestmark = pytest.mark.kafka


@pytest_asyncio.fixture(loop_scope="function")
async def lock_server() -> AsyncIterator[DistributedLockWorker]:
    async with DistributedLockWorker(port=0) as worker:
        yield worker


@pytest_asyncio.fixture(loop_scope="function")
async def kadmin(kafka_bootstrap: str) -> AsyncIterator[KafkaAdmin]:
    admin = KafkaAdmin(kafka_bootstrap)
    yield admin
    admin.close()


@pytest.fixture
def consumers(kafka_bootstrap: str) -> Iterator[Callable[..., Consumer]]:
    made: list[Consumer] = []

    def make(group: str, protocol: str = "consumer") -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": group,
                "group.protocol": protocol,
                "auto.offset.reset": "earliest",
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()


def starter(admin: Any, lock_server: DistributedLockWorker, **kwargs: Any) -> ConsumerStart:
    return ConsumerStart(
        admin, sleep_time=0.5, master_host="127.0.0.1", master_port=lock_server.port, **kwargs
    )


async def assignments(consumers: list[Consumer], rounds: int = 300) -> list[int]:
    """Poll every consumer until each has partitions (or the rounds run out)."""

    def poll_all() -> list[int]:
        for _ in range(rounds):
            for consumer in consumers:
                consumer.poll(0.05)
            sizes = [len(consumer.assignment()) for consumer in consumers]
            if all(sizes):
                return sizes
        return [len(consumer.assignment()) for consumer in consumers]

    return await asyncio.to_thread(poll_all)


@pytest.mark.parametrize("protocol", ["consumer", "classic"])
async def test_each_new_consumer_gets_a_partition_of_its_own(
    kadmin: KafkaAdmin,
    lock_server: DistributedLockWorker,
    unique: Callable[[str], str],
    consumers: Callable[..., Consumer],
    protocol: str,
) -> None:
    topic, group = unique("cs-seq"), unique("cs-seq-group")
    start = starter(kadmin, lock_server)
    started: list[Consumer] = []
    counts = []
    for i in range(3):
        consumer = consumers(group, protocol)
        counts.append(await start.start_with_distributed_lock(consumer, topic, group, f"c{i}"))
        started.append(consumer)
        assert await kadmin.group_member_count(group) == i + 1
    assert counts == [1, 2, 3]
    assert await kadmin.partition_count(topic) == 3
    assert await assignments(started) == [1, 1, 1]


async def test_concurrent_starts_are_serialised_by_the_lock(
    kadmin: KafkaAdmin,
    lock_server: DistributedLockWorker,
    unique: Callable[[str], str],
    consumers: Callable[[str], Consumer],
) -> None:
    # Without the lock all three would count zero members and stop at one partition.
    topic, group = unique("cs-race"), unique("cs-race-group")
    start = starter(kadmin, lock_server)
    racers = [consumers(group) for _ in range(3)]
    counts = await asyncio.gather(
        *(start.start_with_distributed_lock(c, topic, group, f"r{i}") for i, c in enumerate(racers))
    )
    assert sorted(counts) == [1, 2, 3]
    assert await kadmin.partition_count(topic) == 3
    assert sorted(await assignments(racers)) == [1, 1, 1]
    assert lock_server.locks() == {}


async def test_initial_total_partition_sizes_a_new_topic_and_nothing_shrinks(
    kadmin: KafkaAdmin,
    lock_server: DistributedLockWorker,
    unique: Callable[[str], str],
    make_topic: Callable[..., str],
    consumers: Callable[[str], Consumer],
) -> None:
    fresh, group = unique("cs-init"), unique("cs-init-group")
    start = starter(kadmin, lock_server, initial_total_partition=4)
    assert await start.start_with_distributed_lock(consumers(group), fresh, group, "a") == 4

    wide, other_group = make_topic("cs-wide", partitions=5), unique("cs-wide-group")
    plain = starter(kadmin, lock_server)
    assert (
        await plain.start_with_distributed_lock(consumers(other_group), wide, other_group, "b") == 5
    )
    assert await kadmin.partition_count(wide) == 5


async def test_a_plain_admin_client_and_subscribe_callbacks_work(
    admin: Any,
    lock_server: DistributedLockWorker,
    unique: Callable[[str], str],
    consumers: Callable[[str], Consumer],
) -> None:
    topic, group = unique("cs-raw"), unique("cs-raw-group")
    assigned: list[int] = []
    consumer = consumers(group)
    start = starter(admin, lock_server)
    await start.start_with_distributed_lock(
        consumer,
        topic,
        group,
        "raw",
        on_assign=lambda c, parts: assigned.extend(p.partition for p in parts),
    )
    assert await assignments([consumer]) == [1]
    assert assigned == [0]


async def test_other_groups_are_not_held_up_by_a_busy_lock(
    kadmin: KafkaAdmin,
    lock_server: DistributedLockWorker,
    unique: Callable[[str], str],
    consumers: Callable[[str], Consumer],
) -> None:
    topic, busy, free = unique("cs-keys"), unique("busy"), unique("free")
    other = DistributedLock("127.0.0.1", lock_server.port)
    async with other.hold(f"{LOCK_KEY_PREFIX}{topic}/{busy}"):
        start = starter(kadmin, lock_server, lock_timeout=10)
        assert await start.start_with_distributed_lock(consumers(free), topic, free, "f") == 1
        stuck = starter(kadmin, lock_server, lock_timeout=0.3)
        with pytest.raises(LockTimeoutError):
            await stuck.start_with_distributed_lock(consumers(busy), topic, busy, "b")


async def test_a_consumer_that_never_shows_up_releases_the_lock_after_join_timeout(
    kadmin: KafkaAdmin,
    lock_server: DistributedLockWorker,
    unique: Callable[[str], str],
    consumers: Callable[[str], Consumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The consumer joins a different group than the one named, so it is never listed.
    topic, named, actual = unique("cs-lost"), unique("named"), unique("actual")
    start = starter(kadmin, lock_server, join_timeout=1.0)
    await start.start_with_distributed_lock(consumers(actual), topic, named, "lost")
    assert "not listed in group" in caplog.text
    assert lock_server.locks() == {}


async def test_an_absent_master_is_a_clear_error(
    kadmin: KafkaAdmin, unique: Callable[[str], str], consumers: Callable[[str], Consumer]
) -> None:
    async with DistributedLockWorker(port=0) as gone:
        port = gone.port
    start = ConsumerStart(kadmin, master_host="127.0.0.1", master_port=port)
    with pytest.raises(LockUnavailableError, match=f"127.0.0.1:{port}.*DISTRIBUTED_LOCK_WORKER"):
        await start.start_with_distributed_lock(consumers(unique("g")), unique("t"), "g", "x")


async def test_stages_join_through_a_consumer_start_and_share_the_work(
    kafka_bootstrap: str,
    kadmin: KafkaAdmin,
    lock_server: DistributedLockWorker,
    unique: Callable[[str], str],
) -> None:
    from fogverse import Consumer
    from tests.kafka_io import produce_msgpack
    from tests.polling import wait_until

    topic, group = unique("cs-stage"), unique("cs-stage-group")
    seen: dict[str, list[int]] = {"a": [], "b": []}

    class Stage(Consumer):
        def __init__(self, tag: str) -> None:
            self.consumer_start = starter(kadmin, lock_server)
            super().__init__(consumer_topic=topic, consumer_servers=kafka_bootstrap,
                             group_id=group, heartbeat=False, fetch_timeout=0.05,
                             consumer_extra={"topic.metadata.refresh.interval.ms": 1000})
            self.tag = tag

        def process(self, data: int) -> None:
            seen[self.tag].append(data)

    first, second = Stage("a"), Stage("b")
    tasks = [asyncio.create_task(first.run())]
    await wait_until(lambda: first.consumer is not None and first.consumer.assignment(),
                     what="the first stage's partition")
    tasks.append(asyncio.create_task(second.run()))
    await wait_until(lambda: second.consumer is not None and second.consumer.assignment(),
                     what="a partition for the second stage")
    assert await kadmin.partition_count(topic) == 2, "the second stage grew the topic"

    count = 200
    await asyncio.to_thread(produce_msgpack, kafka_bootstrap, topic, range(count),
                            [f"k{i}".encode() for i in range(count)])
    await wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= count, what="every message")
    first.stop()
    second.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert sorted(seen["a"] + seen["b"]) == list(range(count))
    assert seen["a"] and seen["b"], "both stages had work"
