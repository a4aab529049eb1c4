"""KafkaAdmin against the real broker: topics, partitions, lag and members."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from confluent_kafka import Consumer, Producer, TopicPartition

from fogverse.admin import AdminError, KafkaAdmin
from tests.polling import wait_for_value

pytestmark = pytest.mark.kafka


@pytest_asyncio.fixture(loop_scope="function")
async def kadmin(kafka_bootstrap: str) -> AsyncIterator[KafkaAdmin]:
    admin = KafkaAdmin(kafka_bootstrap)
    yield admin
    admin.close()


@pytest.fixture
def consumers(kafka_bootstrap: str) -> Iterator[Callable[..., Consumer]]:
    made: list[Consumer] = []

    def make(group: str, **conf: Any) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                # A member whose leave request is lost (a loaded machine) is dropped
                # after this, not after the 45 s default.
                "session.timeout.ms": 6000,
                **conf,
            }
        )
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()


def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in per_partition.items():
        for i in range(count):
            producer.produce(topic, f"m{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


# -- topics and partitions ----------------------------------------------------


async def test_a_missing_topic_has_no_partition_count(
    kadmin: KafkaAdmin, unique: Callable[[str], str]
) -> None:
    assert await kadmin.partition_count(unique("absent")) is None


async def test_ensure_topic_creates_once_and_leaves_an_existing_topic_alone(
    kadmin: KafkaAdmin, unique: Callable[[str], str]
) -> None:
    topic = unique("created")
    await kadmin.ensure_topic(topic, partitions=3, config={"retention.ms": "60000"})
    assert await kadmin.partition_count(topic) == 3
    await kadmin.ensure_topic(topic, partitions=1)
    await kadmin.ensure_topic(topic, partitions=6)
    assert await kadmin.partition_count(topic) == 3


async def test_ensure_partitions_grows_and_never_shrinks(
    kadmin: KafkaAdmin, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("grow", partitions=2)
    assert await kadmin.ensure_partitions(topic, 5) == 5
    assert await kadmin.partition_count(topic) == 5
    assert await kadmin.ensure_partitions(topic, 3) == 5
    assert await kadmin.ensure_partitions(topic, 5) == 5
    assert await kadmin.partition_count(topic) == 5


async def test_racing_growers_all_succeed_and_the_largest_wins(
    kadmin: KafkaAdmin, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("race", partitions=1)
    others = [KafkaAdmin(kafka_bootstrap) for _ in range(3)]
    wanted = [2, 4, 3, 4, 2, 6]
    admins = [kadmin, *others]
    results = await asyncio.gather(
        *(admins[i % len(admins)].ensure_partitions(topic, n) for i, n in enumerate(wanted))
    )
    for admin in others:
        admin.close()
    assert all(got >= n for got, n in zip(results, wanted, strict=True))
    assert await kadmin.partition_count(topic) == 6


async def test_ensure_partitions_creates_a_missing_topic(
    kadmin: KafkaAdmin, unique: Callable[[str], str]
) -> None:
    topic = unique("fresh")
    assert await kadmin.ensure_partitions(topic, 4) == 4
    assert await kadmin.partition_count(topic) == 4


async def test_a_bad_topic_name_fails_with_kafkas_reason(kadmin: KafkaAdmin) -> None:
    with pytest.raises(AdminError, match="create topic 'no spaces allowed!'") as caught:
        await kadmin.ensure_topic("no spaces allowed!")
    assert caught.value.code is not None


async def test_zero_partitions_is_refused(kadmin: KafkaAdmin) -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        await kadmin.ensure_partitions("whatever", 0)


# -- lag ----------------------------------------------------------------------


async def test_lag_is_produced_minus_committed(
    kadmin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    consumers: Callable[..., Consumer],
) -> None:
    topic = make_topic("lag", partitions=3)
    group = unique("lag-group")
    produce(kafka_bootstrap, topic, {0: 10, 1: 7, 2: 5})
    # A group that never committed owes everything.
    assert await kadmin.group_lag(group, topic) == 22

    committer = consumers(group, **{"group.protocol": "classic"})
    offsets = [TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 7)]
    await asyncio.to_thread(committer.commit, offsets=offsets, asynchronous=False)
    assert await kadmin.group_lag(group, topic) == (10 - 4) + (7 - 7) + 5

    produce(kafka_bootstrap, topic, {1: 3})
    assert await kadmin.group_lag(group, topic) == (10 - 4) + (10 - 7) + 5


async def test_lag_drops_to_zero_once_everything_is_consumed_and_committed(
    kadmin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    consumers: Callable[..., Consumer],
) -> None:
    topic = make_topic("drain", partitions=2)
    group = unique("drain-group")
    produce(kafka_bootstrap, topic, {0: 6, 1: 4})
    consumer = consumers(group)
    consumer.subscribe([topic])

    def drain() -> int:
        seen = 0
        for _ in range(600):
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                seen += 1
                consumer.commit(message=message, asynchronous=False)
            if seen == 10:
                break
        return seen

    assert await asyncio.to_thread(drain) == 10
    assert await kadmin.group_lag(group, topic) == 0


async def test_lag_of_a_missing_topic_is_unknown(
    kadmin: KafkaAdmin, unique: Callable[[str], str]
) -> None:
    assert await kadmin.group_lag(unique("group"), unique("absent")) is None


# -- members ------------------------------------------------------------------


async def test_member_count_follows_consumers_joining_and_leaving(
    kadmin: KafkaAdmin,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    consumers: Callable[..., Consumer],
) -> None:
    topic = make_topic("members", partitions=2)
    group = unique("members-group")
    assert await kadmin.group_member_count(group) == 0

    joined = [consumers(group) for _ in range(2)]
    # A classic-protocol member rejoins a rebalance only while its application
    # polls; members that never poll can hold the group in a rebalance for minutes.
    pollers = [Poller(consumer) for consumer in joined]
    try:
        for consumer in joined:
            consumer.subscribe([topic])
        for poller in pollers:
            poller.start()
        await wait_for_value(lambda: kadmin.group_member_count(group), 2)
        ids = await kadmin.group_member_ids(group)
        for poller in pollers:  # a consumer answers memberid() only between polls
            await asyncio.to_thread(poller.stop)
        assert ids is not None and sorted(ids) == sorted(c.memberid() for c in joined)

        pollers.append(Poller(joined[1]))  # the one who stays serves the rebalance
        pollers[-1].start()
        await asyncio.to_thread(joined[0].close)
        await wait_for_value(lambda: kadmin.group_member_count(group), 1)
    finally:
        for poller in pollers:
            await asyncio.to_thread(poller.stop)


class Poller(threading.Thread):
    """Polls one consumer until stopped, as a live application would."""

    def __init__(self, consumer: Consumer) -> None:
        super().__init__(daemon=True)
        self._consumer = consumer
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            self._consumer.poll(0.1)

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join()


async def test_wrap_uses_an_existing_admin_client(
    admin: Any, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("wrapped", partitions=2)
    wrapped = KafkaAdmin.wrap(admin)
    assert await wrapped.partition_count(topic) == 2


async def test_a_closed_admin_says_so(kafka_bootstrap: str) -> None:
    admin = KafkaAdmin(kafka_bootstrap)
    admin.close()
    with pytest.raises(AdminError, match="closed"):
        await admin.partition_count("anything")
