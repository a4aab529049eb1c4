"""Shared helpers for the deploy tests: waiting for outcomes, reading child reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from deploy_scripts import ServiceSpec

__all__ = ["HERE", "child_spec", "process_gone", "read_report", "wait_until"]

HERE = Path(__file__).parent


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (an unreaped zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for an outcome, failing if it has not happened by the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        await asyncio.sleep(0.05)


async def read_report(report_dir: Path, instance_id: str) -> dict[str, Any]:
    path = report_dir / f"{instance_id}.json"
    await wait_until(path.exists)
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def child_spec(report_dir: Path, **overrides: Any) -> ServiceSpec:
    fields: dict[str, Any] = {
        "name": "child",
        "module": "child_app",
        "cwd": str(HERE),
        "env": {"FV_REPORT_DIR": str(report_dir), "FV_SPEC": "from-spec"},
        "max_instance": 3,
    }
    fields.update(overrides)
    return ServiceSpec(**fields)
