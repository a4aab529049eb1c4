"""A real Apache Kafka broker in a child JVM, for the demo and the tests.

One node in KRaft combined mode (broker and controller in one process), listening on
127.0.0.1 only, with a throwaway data directory. It is the real broker, so anything a
test learns from it (rebalances, offsets, partition counts) holds on a real cluster.

Its settings lean towards quick feedback: one replica everywhere, a small offsets
topic, no initial rebalance delay and short KIP-848 heartbeats, so a group notices a
new or dead member within seconds rather than the production default of 45 s.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
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
    answers,
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

log = logging.getLogger(__name__)

PORT_ATTEMPTS: Final = 3
"""Auto-picked ports can be taken by someone else before the JVM binds them."""


class EmbeddedBroker:
    """A single-node Kafka broker in a child JVM; ``with EmbeddedBroker() as b: b.bootstrap``.

    ``port=0`` picks a free port. ``log_path`` keeps the JVM's log where you say;
    by default it lives in the temporary directory and is removed by :meth:`stop`.
    ``properties`` overrides or adds broker settings. The JVM is killed if this Python
    process dies, so a crashed test run leaves no broker behind.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        controller_port: int = 0,
        kafka_version: str | None = None,
        log_path: Path | str | None = None,
        properties: Mapping[str, str] | None = None,
        heap: str = "1g",
        startup_timeout: float = STARTUP_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
        cache_dir: Path | None = None,
    ) -> None:
        self.requested_port = port
        self.requested_controller_port = controller_port
        self.kafka_version = kafka_version
        self.properties = dict(properties or {})
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.cache_dir = cache_dir
        self._requested_log = Path(log_path) if log_path is not None else None
        self._port = port
        self._log_path: Path | None = self._requested_log
        self._running: _Running | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def port(self) -> int:
        """The PLAINTEXT port; the picked one once started when 0 was asked for."""
        return self._port

    @property
    def bootstrap(self) -> str:
        if not self._port:
            raise RuntimeError("the broker has no port until start() picks one")
        return f"{HOST}:{self._port}"

    @property
    def log_path(self) -> Path | None:
        """The JVM's stdout and stderr; None before the first start when not chosen."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        proc = self._running.proc if self._running else None
        return proc.pid if proc else None

    def is_running(self) -> bool:
        proc = self._running.proc if self._running else None
        return proc is not None and proc.poll() is None

    def start(self) -> Self:
        """Start the JVM and return once a real client call succeeds.

        Raises BrokerUnavailableError (with the log's tail) if Java or Maven is
        missing, the JVM exits, or it is not ready within ``startup_timeout``.
        """
        if self._running is not None:
            raise RuntimeError("this broker is already started")
        java = require_tools("java")["java"]
        check_java_version(java)
        lib = ensure_kafka_jars(self.kafka_version, self.cache_dir)
        auto_ports = not (self.requested_port and self.requested_controller_port)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._launch(java, lib)
                self._await_ready()
                return self
            except _PortTaken:
                self.stop()
                if not auto_ports or attempt == PORT_ATTEMPTS:
                    raise
                log.info("a picked port was taken before Kafka bound it; retrying")
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM (clean shutdown), SIGKILL after ``stop_timeout``; remove the data. Idempotent."""
        finalizer, self._finalizer, self._running = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def wait(self, timeout: float | None = None) -> int:
        """Block until the JVM exits on its own; its exit status."""
        if self._running is None or self._running.proc is None:
            raise RuntimeError("the broker is not running")
        return self._running.proc.wait(timeout)

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
        state = "running" if self.is_running() else "stopped"
        return f"EmbeddedBroker({HOST}:{self._port or '?'}, {state}, pid={self.pid})"

    def _launch(self, java: str, lib: Path) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="fogverse-kafka-"))
        log_path = self._requested_log or workdir / "broker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        running = _Running(workdir=workdir, log_file=log_path.open("ab"))
        self._running = running
        self._finalizer = weakref.finalize(self, running.release, self.stop_timeout)
        self._log_path = log_path
        port, controller_port = self._pick_ports()
        self._port = port
        props_path = workdir / "server.properties"
        props = server_properties(port, controller_port, workdir / "data", self.properties)
        props_path.write_text(render_properties(props), encoding="utf-8")
        log4j = workdir / "log4j2.properties"
        log4j.write_text(packaged_log4j_config(), encoding="utf-8")
        jvm = [
            java,
            f"-Xmx{self.heap}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{lib.resolve()}/*",  # the JVM expands the star, so no shell is involved
        ]
        self._format_storage(jvm, props_path, running)
        running.proc = spawn_node([*jvm, "kafka.Kafka", str(props_path)], running.log_file)
        log.info(
            "Kafka broker starting on %s:%d (pid %d, log %s)",
            HOST,
            port,
            running.proc.pid,
            log_path,
        )

    def _pick_ports(self) -> tuple[int, int]:
        picked = iter(free_ports(2))
        port = self.requested_port or next(picked)
        controller_port = self.requested_controller_port or next(picked)
        if controller_port == port:
            controller_port = next(picked)
        return port, controller_port

    def _format_storage(self, jvm: list[str], props: Path, running: _Running) -> None:
        cmd = [*jvm, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(props)]
        tool = spawn_node(cmd, running.log_file)
        try:
            status = tool.wait(FORMAT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            processes.terminate(tool, 0.0)
        if status != 0:
            raise self._failure(f"formatting Kafka's storage failed (exit {status})")

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        admin: Any = None
        while True:
            self._fail_if_exited()
            if admin is None and port_open(self._port):
                admin = admin_client(self.bootstrap)
            if admin is not None and answers(admin):
                log.info("Kafka broker ready at %s", self.bootstrap)
                return
            if time.monotonic() > deadline:
                raise self._failure(
                    f"Kafka did not answer on {self.bootstrap} within {self.startup_timeout:.0f}s"
                )
            time.sleep(POLL_INTERVAL_S)

    def _fail_if_exited(self) -> None:
        proc = self._running.proc if self._running else None
        status = proc.poll() if proc else None
        if status is None:
            return
        tail = log_tail(self._log_path) if self._log_path else ""
        if "Address already in use" in tail:
            raise _PortTaken(f"Kafka could not bind its ports:\n{tail}")
        raise self._failure(f"the Kafka JVM exited with status {status} while starting")

    def _failure(self, what: str) -> BrokerUnavailableError:
        if self._running is not None:
            self._running.log_file.flush()
        tail = log_tail(self._log_path) if self._log_path else "(no log)"
        return BrokerUnavailableError(f"{what}; last lines of {self._log_path}:\n{tail}")


class _PortTaken(BrokerUnavailableError):
    pass


@dataclass
class _Running:
    """What a started broker holds; kept apart from it so a finalizer can release it."""

    workdir: Path
    log_file: IO[bytes]
    proc: subprocess.Popen[bytes] | None = None

    def release(self, stop_timeout: float) -> None:
        try:
            if self.proc is not None:
                processes.terminate(self.proc, stop_timeout)
        finally:
            self.log_file.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
