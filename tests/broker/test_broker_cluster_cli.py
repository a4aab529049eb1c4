"""`fogverse broker --nodes 3`: three JVMs, one line each, a bootstrap list, a clean stop."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from confluent_kafka.admin import AdminClient

from fogverse.cli import main

STARTUP_TIMEOUT_S = 240.0
EXIT_TIMEOUT_S = 60.0


def read_until_bootstrap(proc: subprocess.Popen[bytes], stderr: Path) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if selector.select(0.5):
            seen += os.read(proc.stdout.fileno(), 4096)
            if re.search(rb"^bootstrap \S+$", seen, re.MULTILINE):
                return seen.decode()
    raise AssertionError(f"no bootstrap line; stdout={seen!r} stderr={stderr.read_text()}")


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.usefixtures("kafka_jars")
def test_the_cli_starts_three_jvms_and_stops_them_all(tmp_path: Path) -> None:
    stderr = tmp_path / "cli.err"
    with stderr.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "fogverse", "broker", "--nodes", "3"],
                                stdout=subprocess.PIPE, stderr=err)  # fmt: skip
    try:
        out = read_until_bootstrap(proc, stderr)
        nodes = re.findall(r"^node (\d+) port (\d+) pid (\d+)$", out, re.MULTILINE)
        assert [int(n[0]) for n in nodes] == [1, 2, 3]
        bootstrap = re.search(r"^bootstrap (\S+)$", out, re.MULTILINE)
        assert bootstrap is not None
        assert bootstrap[1] == ",".join(f"127.0.0.1:{port}" for _, port, _ in nodes)
        jvms = [psutil.Process(int(pid)) for _, _, pid in nodes]
        assert len({j.pid for j in jvms}) == 3
        assert all("kafka.Kafka" in j.cmdline() for j in jvms)
        metadata = AdminClient({"bootstrap.servers": bootstrap[1]}).list_topics(timeout=30)
        assert sorted(metadata.brokers) == [1, 2, 3]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(EXIT_TIMEOUT_S) == 0
        psutil.wait_procs(jvms, timeout=EXIT_TIMEOUT_S)
        assert not any(j.is_running() and j.status() != psutil.STATUS_ZOMBIE for j in jvms)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("argv", [["--nodes", "0"], ["--nodes", "3", "--port", "9092"]])
def test_bad_cluster_options_name_the_setting(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["broker", *argv]) == 2  # a user mistake
    assert "--nodes" in capsys.readouterr().err

