"""Task handlers the agent tests load with ``--handlers tests.agent.task_handlers:HANDLERS``."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fogverse.agent.handlers import TaskContext


def echo(payload: Any, task: TaskContext) -> Any:
    return {"echo": payload, "node": task.node_id, "pid": os.getpid()}


async def add(payload: Any, task: TaskContext) -> Any:
    await asyncio.sleep(0)
    return sum(payload)


def slow(payload: Any, task: TaskContext) -> Any:
    """Sleeps ``payload`` seconds in steps, reporting progress."""
    steps = 4
    for step in range(steps):
        task.progress(step / steps, f"step {step}")
        time.sleep(float(payload) / steps)
    return {"slept": payload, "node": task.node_id}


def boom(payload: Any, task: TaskContext) -> Any:
    raise RuntimeError(f"boom: {payload}")


HANDLERS = {"echo": echo, "add": add, "slow": slow, "boom": boom}
