"""topic.yaml in FogVerse's format: parsing, applying twice, and two real clusters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from fogverse import ConfigError, Consumer
from fogverse.broker import EmbeddedBroker
from fogverse.cli import main as cli_main
from fogverse.topics import apply_topic_file, load_topic_file
from tests.kafka_io import produce_msgpack, read
from tests.polling import wait_until

FOGVERSE_STYLE = """\
server:
  local_kafka: $LOCAL_KAFKA
  cloud_kafka: ${{CLOUD_KAFKA}}
topic:
  {input}:
    partitions: 2
    server:
      - local_kafka
    config:
      retention.ms: 2000
      segment.bytes: 9300000
  {result}:
    partitions: 1
    server: [local_kafka, cloud_kafka]
    config:
      retention.ms: 5000
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_env_names_are_substituted_and_singular_or_plural_keys_read(tmp_path: Path) -> None:
    path = write(tmp_path / "topic.yaml", FOGVERSE_STYLE.format(input="input", result="result"))
    spec = load_topic_file(path, env={"LOCAL_KAFKA": "edge:9092", "CLOUD_KAFKA": "cloud:9092"})
    assert spec.servers == {"local_kafka": "edge:9092", "cloud_kafka": "cloud:9092"}
    by_name = {t.name: t for t in spec.topics}
    assert by_name["input"].partitions == 2 and by_name["input"].servers == ("local_kafka",)
    assert by_name["input"].config == {"retention.ms": "2000", "segment.bytes": "9300000"}
    assert by_name["result"].servers == ("local_kafka", "cloud_kafka")
    plural = write(tmp_path / "plural.yaml",
                   "servers: {a: 'h:1'}\ntopics: {t: {servers: a, configs: {x.y: 1}}}\n")
    (topic,) = load_topic_file(plural, env={}).topics
    assert (topic.partitions, topic.servers, topic.config) == (1, ("a",), {"x.y": "1"})


@pytest.mark.parametrize(("text", "names"), [
    ("server: {a: $NOPE}\ntopic: {t: {server: a}}\n", "server.a.*NOPE is not set"),
    ("server: {a: 'h:1'}\ntopic: {t: {server: b}}\n", r"topic.t.server.*not a cluster"),
    ("server: {a: 'h:1'}\ntopic: {t: {server: a, partitions: 0}}\n", r"topic.t.partitions"),
    ("topic: {t: {server: a}}\n", "server.*missing"),
    ("server: [\n", "not valid YAML"),
])
def test_bad_topic_files_name_the_entry(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load_topic_file(write(tmp_path / "topic.yaml", text), env={})


def configs(servers: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": servers})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(30)
    return {k: v.value for k, v in entries.items()}


def partitions(servers: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": servers})
    return len(admin.list_topics(topic, timeout=30).topics[topic].partitions)


def listed_partitions(servers: str, topic: str) -> int:
    """Partitions of ``topic`` if the cluster lists it, else 0; never auto-creates it."""
    listed = AdminClient({"bootstrap.servers": servers}).list_topics(timeout=30).topics
    return len(listed[topic].partitions) if topic in listed else 0


@pytest.fixture(scope="module")
def cloud_kafka(kafka_jars: Path) -> Iterator[str]:
    """A second real cluster, as FogVerse's cloud Kafka beside the edge one."""
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


async def test_applying_twice_changes_nothing_the_second_time(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOCAL_KAFKA", kafka_bootstrap)
    monkeypatch.setenv("CLOUD_KAFKA", kafka_bootstrap)  # one cluster under two names
    names = {"input": unique("input"), "result": unique("result")}
    path = write(tmp_path / "topic.yaml", FOGVERSE_STYLE.format(**names))

    first = await apply_topic_file(path)
    assert {(c.topic, c.action) for c in first} == {
        (names["input"], "created"), (names["result"], "created"), (names["result"], "unchanged")
    }
    assert partitions(kafka_bootstrap, names["input"]) == 2
    assert configs(kafka_bootstrap, names["input"])["retention.ms"] == "2000"

    assert await asyncio.to_thread(cli_main, ["topics", "apply", str(path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and all(line.endswith("unchanged") for line in printed), printed

    grown = FOGVERSE_STYLE.format(**names).replace("partitions: 2", "partitions: 3")
    grown = grown.replace("retention.ms: 2000", "retention.ms: 3000")
    changed = await apply_topic_file(write(path, grown))
    assert [c.action for c in changed if c.topic == names["input"]] == ["partitions"]
    assert partitions(kafka_bootstrap, names["input"]) == 3
    after = configs(kafka_bootstrap, names["input"])
    assert after["retention.ms"] == "3000" and after["segment.bytes"] == "9300000"


class Bridge(Consumer):
    """Consumes from the edge cluster and produces to the cloud one."""


async def test_a_stage_applies_topic_yaml_and_bridges_two_clusters(
    kafka_bootstrap: str, cloud_kafka: str, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCAL_KAFKA", kafka_bootstrap)
    monkeypatch.setenv("CLOUD_KAFKA", cloud_kafka)
    names = {"input": unique("edge-input"), "result": unique("cloud-result")}
    write(tmp_path / "topic.yaml", FOGVERSE_STYLE.format(**names))
    monkeypatch.chdir(tmp_path)  # a stage finds topic.yaml where it runs, as in FogVerse

    stage = Bridge(consumer_topic=names["input"], producer_topic=names["result"],
                   consumer_servers=kafka_bootstrap, producer_servers=cloud_kafka,
                   group_id=unique("bridge"), max_messages=20, heartbeat=False)
    task = asyncio.create_task(stage.run())
    # Produce only once the stage made the topic: a producer first would auto-create it.
    await wait_until(lambda: task.done() or listed_partitions(kafka_bootstrap, names["input"]),
                     what="the stage to apply topic.yaml", interval=0.2)
    await asyncio.to_thread(produce_msgpack, kafka_bootstrap, names["input"],
                            [{"n": i} for i in range(20)])
    await asyncio.wait_for(task, 120)

    assert partitions(kafka_bootstrap, names["input"]) == 2
    assert configs(cloud_kafka, names["result"])["retention.ms"] == "5000"
    records = await asyncio.to_thread(read, cloud_kafka, names["result"], 20)
    assert sorted(r.data["n"] for r in records) == list(range(20))  # type: ignore[index]
    assert await asyncio.to_thread(read, kafka_bootstrap, names["result"], 0, 5.0) == []

