"""Starting children: every fork happens on one long-lived thread, in a new session.

See the package docstring for why.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from fogverse.processes import death_signal

__all__ = ["in_fork_thread", "spawn"]

T = TypeVar("T")

_DEATH_SIGNAL_SCRIPT: Final = Path(death_signal.__file__).resolve()
# -S: no site-packages, -E: ignore PYTHON* variables, -P: nothing unsafe on sys.path.
_TRAMPOLINE_FLAGS: Final = ("-S", "-E", "-P")

_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"]


class _ForkThread:
    """The thread every child is forked from; it ends only with the process."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._owner_pid = 0

    def run(self, start: Callable[[], T]) -> T:
        if threading.current_thread() is self._thread:
            return start()  # a job that starts a child itself must not wait on its own queue
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
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


def in_fork_thread(start: Callable[[], T]) -> T:
    """Run ``start`` (something that forks, such as ``multiprocessing.Process.start``)
    on the fork thread and return its result; blocks the caller meanwhile."""
    return _fork_thread.run(start)


def spawn(
    argv: Sequence[str],
    *,
    output: IO[bytes] | int,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    die_with_parent: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session and process group.

    Its stdin is ``/dev/null``; stdout and stderr go to ``output`` (give a file:
    a pipe nobody drains stalls the child once it is full). With
    ``die_with_parent`` set to a signal number, the child gets that signal when
    this process dies, SIGKILL included (Linux; elsewhere it is not armed).
    """
    command = list(argv)
    if die_with_parent is not None and death_signal.SUPPORTED:
        command = [
            sys.executable, *_TRAMPOLINE_FLAGS, str(_DEATH_SIGNAL_SCRIPT),
            str(os.getpid()), str(int(die_with_parent)), "--", *command,
        ]  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Ctrl-C on a terminal reaches only us, and we stop children in order;
            # and the child's whole group can be signalled as one.
            start_new_session=True,
            close_fds=True,
        )

    return _fork_thread.run(start)
