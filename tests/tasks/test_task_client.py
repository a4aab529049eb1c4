"""The task client on the real broker, with the test standing in for the master."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer

from fogverse.tasks.client import TaskClient
from fogverse.wire.nodes import decode_fleet, encode_fleet
from fogverse.wire.tasks import TaskStatus, TaskSubmit
from tests.agent.agent_procs import REPO
from tests.kafka_io import read


class Topics:
    def __init__(self, unique: Callable[[str], str]) -> None:
        self.tasks = unique("tasks")
        self.status = unique("task-status")


@pytest.fixture
def topics(unique: Callable[[str], str]) -> Topics:
    return Topics(unique)


@pytest.fixture
def client(kafka_bootstrap: str, topics: Topics) -> Iterator[TaskClient]:
    with TaskClient(kafka_bootstrap, tasks_topic=topics.tasks,
                    status_topic=topics.status) as client:
        yield client


def publish(bootstrap: str, topic: str, *statuses: TaskStatus) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for status in statuses:
        producer.produce(topic, encode_fleet(status, "master"), status.task_id.encode())
    assert producer.flush(30) == 0


def test_submit_sends_the_task_to_the_master(client: TaskClient, kafka_bootstrap: str,
                                             topics: Topics) -> None:
    task_id = client.submit_task("resize", {"w": 64}, priority=7, cpu=0.5, retry_limit=1)
    assert client.flush() == 0
    [record] = read(kafka_bootstrap, topics.tasks, 1)
    assert record.key == task_id.encode()
    body = decode_fleet(record.value).body
    assert body == TaskSubmit(task_id, "resize", {"w": 64}, priority=7, cpu=0.5, retry_limit=1)


def test_status_is_the_masters_latest_word(client: TaskClient, kafka_bootstrap: str,
                                           topics: Topics) -> None:
    assert client.get_task_status("t-1") is None
    publish(kafka_bootstrap, topics.status,
            TaskStatus("t-1", "queued", "echo", submitted_at=1.0),
            TaskStatus("t-1", "running", "echo", "node-a", attempts=1, submitted_at=1.0),
            TaskStatus("t-2", "failed", "boom", "node-b", attempts=3, error="boom",
                       submitted_at=2.0))
    # No waiting: get_task_status reads to the end the topic had when it was called.
    status = client.get_task_status("t-1")
    assert status is not None and (status.state, status.node_id, status.attempts) == (
        "running", "node-a", 1)
    assert [s.task_id for s in client.list_tasks()] == ["t-1", "t-2"]
    assert [s.task_id for s in client.list_tasks("failed")] == ["t-2"]


async def test_results_can_be_awaited(client: TaskClient, kafka_bootstrap: str,
                                      topics: Topics) -> None:
    waiting = asyncio.ensure_future(client.result("t-1", timeout=60))
    await asyncio.sleep(0)
    publish(kafka_bootstrap, topics.status, TaskStatus("t-1", "running", "echo", "node-a"))
    assert not waiting.done()
    publish(kafka_bootstrap, topics.status,
            TaskStatus("t-1", "completed", "echo", "node-a", attempts=1, result={"ok": 1}))
    status = await waiting
    assert (status.state, status.result) == ("completed", {"ok": 1})
    assert client.wait("t-1", timeout=1).result == {"ok": 1}  # already final: no wait


def test_the_cli_submits_and_reads_status(kafka_bootstrap: str, topics: Topics) -> None:
    base = [sys.executable, "-m", "fogverse", "task", "--bootstrap", kafka_bootstrap,
            "--tasks-topic", topics.tasks, "--status-topic", topics.status]
    submitted = subprocess.run([*base, "submit", "echo", "--payload", '{"a": 1}'],
                               cwd=REPO, capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    publish(kafka_bootstrap, topics.status,
            TaskStatus(task_id, "completed", "echo", "node-a", attempts=1, result=[1, 2],
                       updated_at=time.time()))
    shown = subprocess.run([*base, "status", task_id], cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert (status["state"], status["node_id"], status["result"]) == (
        "completed", "node-a", [1, 2])
    missing = subprocess.run([*base, "status", "nope"], cwd=REPO, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 1 and "no status for task nope" in missing.stderr
    bad = subprocess.run([*base, "submit", "echo", "--payload", "{oops"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--payload" in bad.stderr
