"""The broker as a process: `fogverse broker` stops cleanly on SIGTERM and no JVM outlives
its Python parent, whichever way that parent ends.

Each test starts a broker of its own, so they are marked slow.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka.admin import AdminClient

from fogverse.broker import EmbeddedBroker, kafka_bootstrap
from fogverse.constants import ENV_BOOTSTRAP
from tests.polling import wait_until_sync

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.usefixtures("kafka_jars")]

STARTUP_TIMEOUT_S = 120.0
EXIT_TIMEOUT_S = 60.0


def _answers(bootstrap: str) -> bool:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=20)
    return len(metadata.brokers) == 1


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _read_bootstrap(proc: subprocess.Popen[bytes], stderr: Path) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if selector.select(0.5):
            seen += os.read(proc.stdout.fileno(), 4096)
            found = re.search(rb"^bootstrap (\S+)$", seen, re.MULTILINE)
            if found:
                return found[1].decode()
    raise AssertionError(f"no bootstrap line; stdout={seen!r} stderr={stderr.read_text()}")


@pytest.fixture
def cli_broker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    stderr = tmp_path / "cli.err"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fogverse", "broker"], stdout=subprocess.PIPE, stderr=err
        )
    try:
        yield proc, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        # A SIGKILLed parent cannot remove its temporary directory; do it here.
        for workdir in re.findall(r"log (/\S+)/broker\.log", stderr.read_text()):
            shutil.rmtree(workdir, ignore_errors=True)


def _jvm_of(proc: subprocess.Popen[bytes]) -> psutil.Process:
    jvms = [c for c in psutil.Process(proc.pid).children() if c.name() == "java"]
    assert len(jvms) == 1, jvms
    return jvms[0]


def test_cli_broker_serves_then_stops_cleanly_on_sigterm(cli_broker: Any) -> None:
    proc, stderr = cli_broker
    bootstrap = _read_bootstrap(proc, stderr)
    assert bootstrap.startswith("127.0.0.1:")
    assert _answers(bootstrap)
    jvm = _jvm_of(proc)

    proc.send_signal(signal.SIGTERM)

    assert proc.wait(EXIT_TIMEOUT_S) == 0, stderr.read_text()
    assert _gone(jvm)


def test_jvm_dies_when_its_python_parent_is_killed(cli_broker: Any) -> None:
    proc, stderr = cli_broker
    _read_bootstrap(proc, stderr)
    jvm = _jvm_of(proc)

    proc.kill()
    proc.wait()

    wait_until_sync(lambda: _gone(jvm), timeout=EXIT_TIMEOUT_S,
                    what="the JVM to die with its SIGKILLed parent")


def test_broker_started_from_a_short_lived_thread_outlives_the_thread() -> None:
    broker = EmbeddedBroker()
    starter = threading.Thread(target=broker.start)
    starter.start()
    starter.join()
    try:
        assert broker.is_running()
        assert _answers(broker.bootstrap)
    finally:
        jvm = psutil.Process(broker.pid) if broker.pid else None
        log_dir = broker.log_path.parent if broker.log_path else None
        broker.stop()
    assert jvm is not None and _gone(jvm)
    assert log_dir is not None and not log_dir.exists()


def test_kafka_bootstrap_starts_a_broker_only_without_an_external_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_BOOTSTRAP, "kafka.example:9092")
    with kafka_bootstrap() as external:
        assert external == "kafka.example:9092"

    monkeypatch.delenv(ENV_BOOTSTRAP)
    with kafka_bootstrap() as own:
        assert _answers(own)
        port = int(own.rsplit(":", 1)[1])
    listening = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
    assert port not in listening
