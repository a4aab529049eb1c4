"""Children start in their own group, die with us only when asked, and are found
again (and only again) by their recorded identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fogverse.processes import ProcessIdentity, spawn, terminate
from tests.polling import wait_until_sync

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]
WITH_GRANDCHILD = [
    sys.executable, "-c",
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
    "print(g.pid, flush=True)\n"
    "time.sleep(3600)\n",
]  # fmt: skip
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="parent-death signals are Linux only"
)


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie nobody reaped yet counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def parent_app() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _start_parent(started: list[subprocess.Popen[str]], mode: str) -> tuple[int, int]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "parent_app.py"), mode], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    started.append(proc)
    assert proc.stdout is not None
    return proc.pid, int(proc.stdout.readline())


@linux_only
def test_a_child_asked_to_die_with_its_parent_dies_on_sigkill_not_with_the_thread(
    parent_app: list[subprocess.Popen[str]],
) -> None:
    parent, child = _start_parent(parent_app, "die")
    assert not _gone(child), "the child died with the short-lived thread that started it"
    assert psutil.Process(child).ppid() == parent

    os.kill(parent, signal.SIGKILL)

    wait_until_sync(lambda: _gone(child), what="the child to die with its parent")


def test_a_child_not_asked_to_die_outlives_its_sigkilled_parent(
    parent_app: list[subprocess.Popen[str]],
) -> None:
    parent, child = _start_parent(parent_app, "live")
    identity = ProcessIdentity.of(child)
    try:
        os.kill(parent, signal.SIGKILL)
        wait_until_sync(lambda: psutil.Process(child).ppid() != parent, what="reparenting")
        assert not _gone(child)
        assert identity.find() is not None
    finally:
        identity.stop(grace=5)
    assert _gone(child)


def test_a_child_leads_its_own_group_and_terminate_stops_the_grandchildren(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    with out.open("wb") as log:
        proc = spawn(WITH_GRANDCHILD, output=log)
    wait_until_sync(lambda: out.read_text().strip(), what="the grandchild's pid")
    grandchild = int(out.read_text())
    assert os.getpgid(proc.pid) == proc.pid
    assert os.getpgid(grandchild) == proc.pid

    assert terminate(proc, grace=5) == -signal.SIGTERM

    wait_until_sync(lambda: _gone(grandchild), what="the grandchild to be stopped")


def test_an_identity_finds_its_process_and_stops_the_whole_group(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with out.open("wb") as log:
        proc = spawn(WITH_GRANDCHILD, output=log)
    try:
        wait_until_sync(lambda: out.read_text().strip(), what="the grandchild's pid")
        grandchild = int(out.read_text())
        identity = ProcessIdentity.from_info(ProcessIdentity.of(proc.pid).to_info())
        assert identity.pgid == proc.pid
        found = identity.find()
        assert found is not None and found.pid == proc.pid

        assert identity.stop(grace=5)

        assert _gone(proc.pid) and _gone(grandchild)
        assert identity.find() is None
        assert not identity.stop(grace=5), "a second stop must find nothing to stop"
    finally:
        terminate(proc, 0)


def test_an_identity_with_another_start_time_is_not_the_process() -> None:
    proc = spawn(SLEEPER, output=subprocess.DEVNULL)
    try:
        real = ProcessIdentity.of(proc.pid)
        reused = ProcessIdentity(real.pid, real.pgid, real.create_time - 3600)
        assert reused.find() is None
        assert not reused.stop(grace=1)
        assert not _gone(proc.pid), "a mistaken identity must never be signalled"
        other_group = ProcessIdentity(real.pid, real.pgid + 1, real.create_time)
        assert other_group.find() is None
    finally:
        terminate(proc, 0)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    ignore = [sys.executable, "-c",
              "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
              "print('ready', flush=True)\ntime.sleep(3600)"]
    proc = spawn(ignore, output=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    identity = ProcessIdentity.of(proc.pid)
    assert identity.stop(grace=0.3)
    assert proc.wait() == -signal.SIGKILL
    proc.stdout.close()


@pytest.mark.parametrize(
    ("info", "field"),
    [
        ({"pgid": 1, "create_time": 1.0}, "pid"),
        ({"pid": "12", "pgid": 1, "create_time": 1.0}, "pid"),
        ({"pid": 12, "pgid": True, "create_time": 1.0}, "pgid"),
        ({"pid": 12, "pgid": 12, "create_time": -4}, "create_time"),
    ],
)
def test_a_bad_record_is_refused_naming_the_field(info: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"'{field}'"):
        ProcessIdentity.from_info(info)


def test_of_a_missing_process_says_so() -> None:
    proc = spawn(SLEEPER, output=subprocess.DEVNULL)
    terminate(proc, 0)
    with pytest.raises(ProcessLookupError):
        ProcessIdentity.of(proc.pid)
