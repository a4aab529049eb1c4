"""Starting and stopping child processes so that none outlives its owner.

Two hazards shape this module. ``PR_SET_PDEATHSIG`` fires when the *thread*
that forked the child exits, not the process; deploy functions run in pool
threads, so every fork goes through one long-lived daemon thread that ends only
with the process. And a child may start children of its own, so each instance
gets its own process group and is stopped as a group.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["has_exited", "spawn", "terminate"]

_LAUNCHER = Path(__file__).with_name("_launch.py")
_CAN_SET_DEATH_SIGNAL = sys.platform.startswith("linux")
_POLL_INTERVAL = 0.02

_Popen = subprocess.Popen[bytes]
_Job = tuple[Callable[[], _Popen], "concurrent.futures.Future[_Popen]"]


class _ForkThread:
    """The one thread every child is forked from (see the module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._owner_pid = 0

    def run(self, start: Callable[[], _Popen]) -> _Popen:
        future: concurrent.futures.Future[_Popen] = concurrent.futures.Future()
        self._ensure_running()
        self._jobs.put((start, future))
        return future.result()

    def _ensure_running(self) -> None:
        with self._guard:
            # After a fork of this process the thread object exists but the thread does not.
            if self._thread is not None and self._owner_pid == os.getpid():
                return
            self._jobs = queue.SimpleQueue()
            self._owner_pid = os.getpid()
            self._thread = threading.Thread(
                target=self._serve, args=(self._jobs,), name="fogverse-fork", daemon=True
            )
            self._thread.start()

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[_Job]) -> None:
        while True:
            start, future = jobs.get()
            try:
                future.set_result(start())
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)


_fork_thread = _ForkThread()


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    log: IO[bytes],
    death_signal: int,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new process group, output to ``log``, dying with us."""
    if _CAN_SET_DEATH_SIGNAL:
        argv = [
            sys.executable, "-S", str(_LAUNCHER), str(os.getpid()), str(death_signal), "--",
            *argv,
        ]  # fmt: skip

    def start() -> _Popen:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )

    return _fork_thread.run(start)


def _signal_group(pgid: int, sig: int) -> None:
    # Either error means the whole group is already gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the leader has exited, *without* reaping it.

    An unreaped leader keeps its pid, and so its process-group id, from being
    reused; that is what makes the group kill in ``terminate`` safe.
    """
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _wait_unreaped(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not has_exited(proc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def terminate(proc: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM the instance's group, SIGKILL it after ``grace`` seconds; return the exit code.

    Whatever the leader left behind in its group is killed too, so a stop never
    leaves orphans.
    """
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        if not _wait_unreaped(proc, grace):
            _signal_group(proc.pid, signal.SIGKILL)
        # The leader is still a zombie here, so its group id cannot belong to anyone else.
        _signal_group(proc.pid, signal.SIGKILL)
    return proc.wait()
