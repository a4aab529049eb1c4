"""A parallel stage process ends with no worker left behind, however it ends."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest

from tests.conftest import create_topic
from tests.kafka_io import produce, read
from tests.polling import wait_until_sync

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

APP = Path(__file__).with_name("stage_app.py")
ROOT = Path(__file__).parents[2]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(APP), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def _descendants(pid: int) -> list[psutil.Process]:
    children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
    return children


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _running_stage(servers: str, src: str, dst: str, group: str
                   ) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    app = _start(servers, src, dst, group)
    assert app.stdout is not None
    assert app.stdout.readline().strip() == "started"
    read(servers, dst, 100, timeout=60, settle=0)  # mid-stream: its workers are busy
    workers = _descendants(app.pid)
    assert len(workers) >= 2, "expected at least the two worker processes"
    return app, workers


def _inputs(servers: str, topic: str, count: int) -> None:
    produce(servers, topic, (msgpack.packb(i) for i in range(count)),
            [f"k{i % 4}".encode() for i in range(count)])


def test_sigterm_drains_commits_and_leaves_no_process_behind(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("pterm-in"), 2), create_topic(admin, unique("pterm-o"))
    count = 1500
    _inputs(kafka_bootstrap, src, count)
    group = unique("pterm")
    app, workers = _running_stage(kafka_bootstrap, src, dst, group)

    app.send_signal(signal.SIGTERM)
    out, _ = app.communicate(timeout=60)
    assert app.returncode == 0, out
    wait_until_sync(lambda: not _alive(workers), timeout=15, what="no process to outlive the stage")
    consumed = int(out.rsplit("consumed=", 1)[1].split()[0])
    assert consumed < count, "the test stopped too late to be mid-stream"

    # What the first run committed is not redone; the rest is not lost.
    second = _start(kafka_bootstrap, src, dst, group)
    assert second.stdout is not None
    assert second.stdout.readline().strip() == "started"
    ids = {r.data["in"] for r in read(kafka_bootstrap, dst, count)}  # type: ignore[index]
    second.send_signal(signal.SIGTERM)
    second.communicate(timeout=60)
    assert ids == set(range(count)), f"lost {sorted(set(range(count)) - ids)[:10]}"


def test_workers_die_with_a_sigkilled_stage(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("pkill-in"), 2), create_topic(admin, unique("pkill-o"))
    _inputs(kafka_bootstrap, src, 1500)
    app, workers = _running_stage(kafka_bootstrap, src, dst, unique("pkill"))

    app.kill()
    app.communicate(timeout=30)
    wait_until_sync(lambda: not _alive(workers), timeout=15,
                    what="no worker to outlive a SIGKILLed stage")
