"""Stopping a child's whole process group, whether we started it or only found it again."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from typing import Final

import psutil

__all__ = ["has_exited", "signal_group", "terminate", "wait_gone"]

_POLL_INTERVAL_S: Final = 0.02

log = logging.getLogger(__name__)


def signal_group(pgid: int, sig: int) -> None:
    # Either error means the whole group is already gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether our child has exited, *without* reaping it.

    An unreaped child keeps its pid, and so its process-group id, from being
    reused; that is what makes the group kill in :func:`terminate` safe.
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
        time.sleep(_POLL_INTERVAL_S)
    return True


def terminate(proc: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM our child's group, SIGKILL it after ``grace`` seconds; the exit status.

    Whatever the leader left behind in its group is killed too, so a stop never
    leaves orphans. ``proc`` must lead its group (started by ``spawn``).
    """
    if proc.returncode is None:
        try:
            signal_group(proc.pid, signal.SIGTERM)
            if not _wait_unreaped(proc, grace) and grace > 0:
                log.warning("pid %d ignored SIGTERM for %.1fs; killing its group", proc.pid, grace)
        finally:
            # Also reached on a second Ctrl-C during the wait: nothing is left behind. The
            # leader is at worst a zombie here, so its group id cannot belong to anyone else.
            signal_group(proc.pid, signal.SIGKILL)
    return proc.wait()


def _gone(proc: psutil.Process) -> bool:
    # A zombie has finished; whoever adopted it may be slow to reap it (or never do).
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has finished; those still running at the deadline."""
    deadline = time.monotonic() + timeout
    left = list(procs)
    while left := [p for p in left if not _gone(p)]:
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_INTERVAL_S)
    return left
