"""A real multi-node Kafka cluster on loopback: each node its own JVM, KRaft quorum of all.

For users who outgrow one broker, and for tests that must lose one: every node is
broker and controller, the controller quorum is every node (so three nodes survive
the loss of one), and internal topics are replicated to three nodes with two in
sync. Nodes share one cluster id and keep their data directory across
:meth:`KafkaCluster.kill` and :meth:`KafkaCluster.restart`, so a restarted node
rejoins with its logs and catches up rather than starting blank.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from fogverse import processes
from fogverse.broker.jars import ensure_kafka_jars, require_tools
from fogverse.broker.kafka_node import (
    FORMAT_TIMEOUT_S,
    HOST,
    POLL_INTERVAL_S,
    STARTUP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    admin_client,
    check_java_version,
    free_ports,
    log_tail,
    new_cluster_id,
    packaged_log4j_config,
    port_open,
    render_properties,
    server_properties,
    spawn_node,
)
from fogverse.errors import BrokerUnavailableError

__all__ = ["KafkaCluster", "NodeInfo", "cluster_settings"]

log = logging.getLogger(__name__)

MAX_REPLICATION: Final = 3


def cluster_settings(nodes: int) -> dict[str, str]:
    """Replication for a cluster of ``nodes``: up to three copies, all but one in sync."""
    replicas = str(min(MAX_REPLICATION, nodes))
    in_sync = str(max(1, min(MAX_REPLICATION, nodes) - 1))
    return {
        "default.replication.factor": replicas,
        "min.insync.replicas": in_sync,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
    }


@dataclass(frozen=True)
class NodeInfo:
    """One node as a user sees it: its id, client port and JVM's PID (None when down)."""

    node_id: int
    port: int
    pid: int | None
    log_path: Path


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    props_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None

    def info(self) -> NodeInfo:
        alive = self.proc is not None and self.proc.poll() is None
        return NodeInfo(self.node_id, self.port, self.proc.pid if alive and self.proc else None,
                        self.log_path)  # fmt: skip


@dataclass
class _Processes:
    """What a started cluster holds; apart from it so a finalizer can release it."""

    workdir: Path
    nodes: list[_Node] = field(default_factory=list)

    def release(self, stop_timeout: float) -> None:
        # All at once: stopped one by one, the last node waits in vain for a quorum.
        procs = [n.proc for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        try:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + stop_timeout
            for proc in procs:
                _terminate(proc, max(0.0, deadline - time.monotonic()))
        finally:
            for node in self.nodes:
                if node.log_file is not None:
                    node.log_file.close()
            shutil.rmtree(self.workdir, ignore_errors=True)


class KafkaCluster:
    """``nodes`` Kafka nodes on 127.0.0.1, each its own JVM: ``with KafkaCluster(3) as c:``.

    ``bootstrap`` lists every node. :meth:`kill` SIGKILLs one node, :meth:`restart`
    brings it back on the same ports and data. ``properties`` overrides broker
    settings on every node. The JVMs die with this Python process.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        kafka_version: str | None = None,
        heap: str = "512m",
        properties: Mapping[str, str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S * 2,
        stop_timeout: float = STOP_TIMEOUT_S,
        cache_dir: Path | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        self.size = nodes
        self.kafka_version = kafka_version
        self.heap = heap
        self.properties = {**cluster_settings(nodes), **(properties or {})}
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.cache_dir = cache_dir
        self._jvm: list[str] = []
        self._running: _Processes | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{node.port}" for node in self._nodes())

    def nodes(self) -> list[NodeInfo]:
        return [node.info() for node in self._nodes()]

    def start(self) -> Self:
        """Start every node and return once a client sees all of them."""
        if self._running is not None:
            raise RuntimeError("this cluster is already started")
        java = require_tools("java")["java"]
        check_java_version(java)
        lib = ensure_kafka_jars(self.kafka_version, self.cache_dir)
        workdir = Path(tempfile.mkdtemp(prefix="fogverse-kafka-cluster-"))
        self._running = _Processes(workdir)
        self._finalizer = weakref.finalize(self, self._running.release, self.stop_timeout)
        try:
            self._jvm = self._jvm_command(java, lib, workdir)
            self._running.nodes = self._configure(workdir)
            self._format_all(new_cluster_id())
            for node in self._running.nodes:
                self._launch(node)
            self._await(lambda ids: len(ids) == self.size, f"all {self.size} nodes")
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, node_id: int) -> None:
        """SIGKILL one node's JVM (no clean shutdown) and wait until it is gone."""
        node = self._node(node_id)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()
        log.info("Kafka node %d killed", node_id)

    def restart(self, node_id: int) -> None:
        """Start a killed or stopped node again, on its ports and data; return once it is back."""
        node = self._node(node_id)
        if node.proc is not None and node.proc.poll() is None:
            raise RuntimeError(f"node {node_id} is still running")
        self._launch(node)
        # Its port opens only once the node is ready; the others may still list it as before.
        self._await(lambda ids: node_id in ids and port_open(node.port),
                    f"node {node_id} to rejoin")  # fmt: skip

    def wait(self) -> int:
        """Block until any node's JVM exits on its own; its node id."""
        while True:
            for node in self._nodes():
                if node.proc is not None and node.proc.poll() is not None:
                    return node.node_id
            time.sleep(POLL_INTERVAL_S * 5)

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL after ``stop_timeout``; remove the data. Idempotent."""
        finalizer, self._finalizer, self._running = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaCluster({self.size} nodes, {self.bootstrap or 'stopped'})"

    # -- set-up ----------------------------------------------------------------

    def _nodes(self) -> list[_Node]:
        return self._running.nodes if self._running is not None else []

    def _node(self, node_id: int) -> _Node:
        for node in self._nodes():
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id} in {self!r}")

    def _jvm_command(self, java: str, lib: Path, workdir: Path) -> list[str]:
        log4j = workdir / "log4j2.properties"
        log4j.write_text(packaged_log4j_config(), encoding="utf-8")
        return [java, f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
                "-cp", f"{lib.resolve()}/*"]  # fmt: skip

    def _configure(self, workdir: Path) -> list[_Node]:
        ports = free_ports(2 * self.size)
        nodes = [
            _Node(n, ports[2 * n - 2], ports[2 * n - 1], workdir / f"node-{n}.properties",
                  workdir / f"node-{n}.log")
            for n in range(1, self.size + 1)
        ]
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in nodes)
        for node in nodes:
            data = workdir / f"data-{node.node_id}"
            props = server_properties(node.port, node.controller_port, data, self.properties)
            props.update({"node.id": str(node.node_id), "controller.quorum.voters": voters})
            node.props_path.write_text(render_properties(props), encoding="utf-8")
            node.log_file = node.log_path.open("ab")
        return nodes

    def _format_all(self, cluster_id: str) -> None:
        # In parallel: each format is a JVM start, and they do not depend on each other.
        storage_tool = [*self._jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c"]
        tools = [(node, _spawn([*storage_tool, str(node.props_path)], node))
                 for node in self._nodes()]  # fmt: skip
        for node, tool in tools:
            try:
                status: int | None = tool.wait(FORMAT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                status = None
            finally:
                _terminate(tool, 0.0)
            if status != 0:
                raise self._failure(node, f"formatting node {node.node_id}'s storage failed"
                                          f" (exit {status})")  # fmt: skip

    def _launch(self, node: _Node) -> None:
        node.proc = _spawn([*self._jvm, "kafka.Kafka", str(node.props_path)], node)
        log.info("Kafka node %d starting on %s:%d (pid %d, log %s)",
                 node.node_id, HOST, node.port, node.proc.pid, node.log_path)  # fmt: skip

    def _await(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        admin: Any = None
        while True:
            for node in self._nodes():
                if node.proc is not None and node.proc.poll() is not None:
                    raise self._failure(node, f"Kafka node {node.node_id} exited with status"
                                              f" {node.proc.returncode}")  # fmt: skip
            if admin is None and any(port_open(n.port) for n in self._nodes()):
                admin = admin_client(self.bootstrap)
            if admin is not None and ready(_broker_ids(admin)):
                log.info("Kafka cluster ready at %s", self.bootstrap)
                return
            if time.monotonic() > deadline:
                raise self._failure(self._nodes()[0], f"waited {self.startup_timeout:.0f}s"
                                                      f" for {what}")  # fmt: skip
            time.sleep(POLL_INTERVAL_S)

    def _failure(self, node: _Node, what: str) -> BrokerUnavailableError:
        if node.log_file is not None:
            node.log_file.flush()
        return BrokerUnavailableError(
            f"{what}; last lines of {node.log_path}:\n{log_tail(node.log_path)}"
        )


def _broker_ids(admin: Any) -> set[int]:
    from confluent_kafka import KafkaException

    try:
        return set(admin.list_topics(timeout=2.0).brokers)
    except KafkaException:
        return set()


def _spawn(cmd: list[str], node: _Node) -> subprocess.Popen[bytes]:
    assert node.log_file is not None
    return spawn_node(cmd, node.log_file)


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    processes.terminate(proc, timeout)
