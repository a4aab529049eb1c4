"""What starting any Kafka node takes, a lone broker or a cluster member.

Its settings file, free ports, a cluster id, the JVM spawned with its log in a
file, and the probes that tell it is up (or why it is not).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import IO, Any, Final

from fogverse import processes
from fogverse.broker.jars import INSTALL_HINT
from fogverse.errors import BrokerUnavailableError

__all__ = [
    "DEV_SETTINGS",
    "FORMAT_TIMEOUT_S",
    "HOST",
    "LOG_TAIL_LINES",
    "MIN_JAVA",
    "POLL_INTERVAL_S",
    "STARTUP_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "admin_client",
    "answers",
    "check_java_version",
    "cluster_id_from_uuid",
    "free_ports",
    "java_major",
    "log_tail",
    "new_cluster_id",
    "packaged_log4j_config",
    "port_open",
    "render_properties",
    "server_properties",
    "spawn_node",
]

HOST: Final = "127.0.0.1"
STARTUP_TIMEOUT_S: Final = 90.0
STOP_TIMEOUT_S: Final = 20.0
FORMAT_TIMEOUT_S: Final = 120.0
POLL_INTERVAL_S: Final = 0.1
MIN_JAVA: Final = 17
LOG_TAIL_LINES: Final = 40

# Each value is chosen for a single-node test/dev broker; names checked against
# Kafka 4.1's GroupCoordinatorConfig, TransactionLogConfig and ShareCoordinatorConfig.
DEV_SETTINGS: Final[Mapping[str, str]] = {
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "auto.create.topics.enable": "true",
    # The default of 50 partitions makes the first consumer group wait for 50 logs.
    "offsets.topic.num.partitions": "4",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # Classic protocol: let clients ask for short sessions.
    "group.min.session.timeout.ms": "1000",
    # KIP-848 protocol: the broker, not the client, owns these timings.
    "group.consumer.min.heartbeat.interval.ms": "500",
    "group.consumer.heartbeat.interval.ms": "1000",
    "group.consumer.min.session.timeout.ms": "3000",
    "group.consumer.session.timeout.ms": "6000",
}


def cluster_id_from_uuid(value: uuid.UUID) -> str:
    """Kafka's textual form of a UUID: 22 characters of unpadded base64url."""
    return base64.urlsafe_b64encode(value.bytes).decode("ascii").rstrip("=")


def new_cluster_id(source: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A fresh cluster id; ids starting with '-' are skipped because tools read them as flags."""
    while True:
        candidate = cluster_id_from_uuid(source())
        if not candidate.startswith("-"):
            return candidate


def free_ports(count: int) -> list[int]:
    """Ports free right now; all sockets stay bound until every port is picked, so they differ."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def server_properties(
    port: int, controller_port: int, data_dir: Path, overrides: Mapping[str, str]
) -> dict[str, str]:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        **DEV_SETTINGS,
    }
    props.update(overrides)
    return props


def render_properties(props: Mapping[str, str]) -> str:
    # Backslashes are escapes in Java properties files; nothing else we write needs care.
    return "".join(f"{key}={value.replace(chr(92), chr(92) * 2)}\n" for key, value in props.items())


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def spawn_node(cmd: list[str], log_file: IO[bytes]) -> subprocess.Popen[bytes]:
    # A file, never a pipe: a full pipe would stall the JVM. Its own session lets a
    # terminal's Ctrl-C reach only Python, which stops Kafka in order.
    return processes.spawn(cmd, output=log_file, die_with_parent=signal.SIGKILL)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def admin_client(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})


def answers(admin: Any) -> bool:
    from confluent_kafka import KafkaException

    try:
        admin.list_topics(timeout=2.0)
    except KafkaException:
        return False
    return True


def packaged_log4j_config() -> str:
    return resources.files("fogverse.broker").joinpath("log4j2.properties").read_text("utf-8")


def check_java_version(java: str) -> None:
    major = java_major(java)
    if major is not None and major < MIN_JAVA:
        raise BrokerUnavailableError(
            f"{java} is Java {major}; Kafka 4 needs Java {MIN_JAVA} or newer. " + INSTALL_HINT
        )


def java_major(java: str) -> int | None:
    """The major version `java -version` reports, or None when it cannot be told."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return None
    major = int(found[1])
    # Java 8 and older call themselves "1.8".
    return int(found[2]) if major == 1 and found[2] else major
