"""Real ``fogverse agent`` processes and a stand-in master's view of the node topics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from fogverse.wire.nodes import FleetBody, FleetMessage, decode_fleet, encode_fleet
from tests.polling import wait_until_sync

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
HANDLERS = "tests.agent.task_handlers:HANDLERS"
PROFILE_VARS = ("BATTERY", "CHARGING", "THERMAL", "MEMORY_GB", "CPU_CORES", "CPU_PERCENT", "GPU",
                "AIV_MOBILE_PROFILE", "FOGVERSE_CONTROL_KEY")


def start_agent(
    bootstrap: str, node_id: str, nodes_topic: str, orders_topic: str, log_dir: Path, *,
    profile: Mapping[str, str] | None = None, master: str = "test-master",
    handlers: str | None = HANDLERS, max_tasks: int = 2, tags: str = "",
    profile_file: Path | None = None,
) -> subprocess.Popen[bytes]:
    """One agent process; its output goes to ``log_dir/<node>.agent.log``."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARS}
    env.update(profile or {})
    argv = [sys.executable, "-m", "fogverse", "agent", "--bootstrap", bootstrap,
            "--node-id", node_id, "--master", master, "--interval", "0.5",
            "--nodes-topic", nodes_topic, "--orders-topic", orders_topic,
            "--max-tasks", str(max_tasks), "--log-dir", str(log_dir), "--tags", tags]
    if handlers:
        argv += ["--handlers", handlers]
    if profile_file is not None:
        argv += ["--profile-file", str(profile_file)]
    log = open(log_dir / f"{node_id}.agent.log", "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def stop_agent(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class NodeWatch:
    """Everything agents said on the nodes topic, decoded, from the topic's start."""

    def __init__(self, bootstrap: str, topic: str, key: bytes | None = None) -> None:
        self.messages: list[FleetMessage] = []
        self.malformed: list[str] = []
        self._key = key
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{topic}",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 20})
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                for msg in self._consumer.consume(100, 0.1):
                    if msg.error() is not None:
                        continue
                    try:
                        decoded = decode_fleet(msg.value(), self._key)
                    except Exception as exc:
                        with self._lock:
                            self.malformed.append(str(exc))
                        continue
                    with self._lock:
                        self.messages.append(decoded)
        finally:
            self._consumer.close()

    def bodies(self, kind: type[T], where: Callable[[T], bool] = lambda _b: True) -> list[T]:
        with self._lock:
            return [m.body for m in self.messages
                    if isinstance(m.body, kind) and where(m.body)]

    def wait_for(self, kind: type[T], where: Callable[[T], bool] = lambda _b: True,
                 timeout: float = 60.0, what: str | None = None) -> T:
        found: list[T] = []

        def seen() -> bool:
            found[:] = self.bodies(kind, where)
            return bool(found)

        wait_until_sync(seen, timeout=timeout, what=what or f"a {kind.__name__}")
        return found[0]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Orders:
    """A stand-in master sending orders to agents."""

    def __init__(self, bootstrap: str, topic: str, sender: str = "test-master",
                 key: bytes | None = None) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
        self._topic = topic
        self.sender = sender
        self._key = key

    def send(self, order: FleetBody, sender: str | None = None) -> None:
        node: Any = getattr(order, "node_id", "")
        self._producer.produce(self._topic, encode_fleet(order, sender or self.sender, self._key),
                               str(node).encode())
        assert self._producer.flush(30) == 0
