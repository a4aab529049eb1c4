"""Shared helpers for the deploy tests: reading child reports, telling a process is gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil

from deploy_scripts import ServiceSpec
from tests.polling import wait_until

__all__ = ["HERE", "child_spec", "process_gone", "read_report"]

HERE = Path(__file__).parent


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (an unreaped zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def read_report(report_dir: Path, instance_id: str) -> dict[str, Any]:
    path = report_dir / f"{instance_id}.json"
    await wait_until(path.exists, what=f"the report of {instance_id}")
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
