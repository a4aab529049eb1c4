"""A three-node cluster loses a broker (SIGKILL) mid-stream and a stage loses no message.

One real cluster for the module: three JVMs on loopback. Topics have three
replicas with two in sync, producers use acks=all (idempotence), so the loss
of one broker must cost neither the source nor the stage anything, and the
node must rejoin once restarted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from fogverse import Consumer
from fogverse.admin import KafkaAdmin
from fogverse.broker.cluster import KafkaCluster
from fogverse.errors import BrokerUnavailableError
from tests.conftest import skip_or_fail, wait_for_topic
from tests.polling import wait_until, wait_until_sync

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.usefixtures("kafka_jars")]

MESSAGES = 100_000
KILL_AFTER = 20_000
PARTITIONS = 3
STREAM_TIMEOUT_S = 420.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(3, heap="512m")
    try:
        cluster.start()
    except BrokerUnavailableError as exc:
        skip_or_fail(exc)
    try:
        yield cluster
    finally:
        cluster.stop()


def replicated_topic(admin: AdminClient, name: str) -> str:
    spec = NewTopic(name, num_partitions=PARTITIONS, replication_factor=3,
                    config={"min.insync.replicas": "2"})  # fmt: skip
    admin.create_topics([spec])[name].result(60)
    wait_for_topic(admin, name, PARTITIONS, timeout=60)
    return name


def in_sync_replicas(admin: AdminClient, topic: str) -> list[int]:
    partitions = admin.list_topics(topic=topic, timeout=10).topics[topic].partitions
    return [len(p.isrs) for p in partitions.values()]


class Source(threading.Thread):
    """Produces ids 0..MESSAGES-1 with acks=all and counts what the cluster acknowledged."""

    def __init__(self, servers: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.producer = KafkaProducer({"bootstrap.servers": servers, "enable.idempotence": True,
                                       "acks": "all", "linger.ms": 5})  # fmt: skip
        self.topic = topic
        self.acked = 0
        self.failed: list[str] = []

    def _report(self, err: Any, msg: Any) -> None:
        if err is None:
            self.acked += 1
        else:
            self.failed.append(str(err))

    def run(self) -> None:
        headers = [("content-type", b"application/msgpack")]
        for i in range(MESSAGES):
            value = msgpack.packb({"id": i})
            while True:
                try:
                    self.producer.produce(self.topic, value, headers=headers,
                                          on_delivery=self._report)  # fmt: skip
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.producer.poll(0)
        self.producer.flush(STREAM_TIMEOUT_S)


class Sink(threading.Thread):
    """Reads the stage's output and keeps every id it saw, and how many times."""

    def __init__(self, servers: str, topic: str, group: str) -> None:
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer({"bootstrap.servers": servers, "group.id": group,
                                       "auto.offset.reset": "earliest"})  # fmt: skip
        self.topic = topic
        self.ids: set[int] = set()
        self.received = 0
        self.done = threading.Event()

    def run(self) -> None:
        self.consumer.subscribe([self.topic])
        try:
            while not self.done.is_set():
                for msg in self.consumer.consume(500, 0.2):
                    if msg.error() is None:
                        self.ids.add(msgpack.unpackb(msg.value())["id"])
                        self.received += 1
        finally:
            self.consumer.close()


class PassThrough(Consumer):
    """The identity stage."""


def leader_of(admin: AdminClient, topic: str, partition: int) -> int:
    metadata = admin.list_topics(topic=topic, timeout=10)
    return int(metadata.topics[topic].partitions[partition].leader)


def test_cluster_lists_its_nodes(cluster: KafkaCluster) -> None:
    nodes = cluster.nodes()
    assert [n.node_id for n in nodes] == [1, 2, 3]
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{n.port}" for n in nodes)
    assert all(n.pid for n in nodes)


async def test_a_stage_loses_nothing_when_a_broker_is_killed_and_the_node_rejoins(
    cluster: KafkaCluster, unique: Any
) -> None:
    servers = cluster.bootstrap
    admin = AdminClient({"bootstrap.servers": servers})
    source = replicated_topic(admin, unique("cluster-in"))
    target = replicated_topic(admin, unique("cluster-out"))
    stage = PassThrough(consumer_topic=source, producer_topic=target, consumer_servers=servers,
                        group_id=unique("cluster-stage"), heartbeat=False)  # fmt: skip
    sink = Sink(servers, target, unique("cluster-sink"))
    feeder = Source(servers, source)
    sink.start()
    running = asyncio.create_task(stage.run())
    feeder.start()
    try:
        await wait_until(lambda: len(sink.ids) >= KILL_AFTER, timeout=STREAM_TIMEOUT_S,
                         what=f"{KILL_AFTER} messages through the stage")  # fmt: skip
        victim = leader_of(admin, target, 0)
        cluster.kill(victim)
        assert victim not in [n.node_id for n in cluster.nodes() if n.pid is not None]
        await wait_until(
            lambda: len(sink.ids) >= MESSAGES or running.done(),
            timeout=STREAM_TIMEOUT_S,
            what="every message through the stage",
        )
        assert not running.done(), "the stage stopped when a broker died"
    finally:
        stage.stop()
        await asyncio.wait_for(running, 120)
        sink.done.set()
        await asyncio.to_thread(feeder.join, STREAM_TIMEOUT_S)
        await asyncio.to_thread(sink.join, 60)
    assert feeder.failed == [] and feeder.acked == MESSAGES
    assert sink.ids == set(range(MESSAGES))
    # At least once: a retry after the failover may repeat a message, never drop one.
    assert sink.received >= MESSAGES

    await asyncio.to_thread(cluster.restart, victim)
    assert all(n.pid is not None for n in cluster.nodes())
    await asyncio.to_thread(
        wait_until_sync, lambda: in_sync_replicas(admin, target) == [3] * PARTITIONS,
        timeout=120, what="the restarted node back in sync on every partition",
    )  # fmt: skip


async def test_internal_topics_are_replicated_where_the_cluster_allows(
    cluster: KafkaCluster, unique: Any
) -> None:
    kafka_admin = KafkaAdmin(cluster.bootstrap)
    try:
        name = unique("fogverse-internal")
        await kafka_admin.ensure_topic(name, 1, replicated=True)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        await asyncio.to_thread(
            wait_until_sync, lambda: in_sync_replicas(admin, name) == [3], timeout=60
        )
        described = admin.describe_configs([_topic_resource(name)])
        config = next(iter(described.values())).result(30)
        assert config["min.insync.replicas"].value == "2"
    finally:
        kafka_admin.close()


def _topic_resource(name: str) -> Any:
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    return ConfigResource("topic", name)
