"""Starting, watching and ending worker processes: the parts that are about OS processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

from fogverse.processes import in_fork_thread

__all__ = ["context", "describe_exit", "kill_all", "start_process", "wait_exit"]

_EXIT_POLL_S = 0.01


def context(method: str) -> SpawnContext | ForkServerContext:
    # Never "fork": a forked copy of a process running Kafka clients' threads
    # and an event loop is not safe.
    if method == "forkserver":
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def start_process(process: BaseProcess) -> None:
    """Start a worker from the fork thread, so its death signal follows the stage
    process rather than whichever thread runs the stage's loop (fogverse.processes)."""
    in_fork_thread(process.start)


async def wait_exit(process: BaseProcess, timeout: float) -> bool:
    # Deaths are rare, so a short poll is simpler than watching the sentinel.
    deadline = time.monotonic() + timeout
    while process.exitcode is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_EXIT_POLL_S)
    return True


def describe_exit(code: int | None) -> str:
    """A worker's exit status in words, for logs and dead-letter headers."""
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        if -code == signal.SIGKILL:
            return f"killed by signal {name}: killed from outside, or out of memory"
        return f"killed by signal {name}"
    return f"exited with code {code}"


def kill_all(processes: set[BaseProcess]) -> None:
    for process in list(processes):
        if process.exitcode is None:
            process.kill()
