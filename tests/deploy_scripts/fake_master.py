"""A throwaway "master" process: deploys one LOCAL child, reports on it, sleeps.

The deploy runs in a pool thread that stays alive until the child is fully up
and then exits; a child wrongly tied to that thread would die at that moment.
It prints one JSON line: the instance id, the result's ``info`` (what a new
Master adopts it by) and whether the child was still alive after the thread left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

from deploy_scripts import DeployConfig, DeployResult, DeployScripts, LocalProvider, ServiceSpec

__all__ = ["main"]

_GRACE = 1.0
"""Seconds a wrongly delivered death signal gets to take effect before we look."""


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


async def _deploy(report_dir: Path) -> DeployResult:
    here = str(Path(__file__).parent)
    spec = ServiceSpec(
        "child", module="child_app", cwd=here, env={"FV_REPORT_DIR": str(report_dir)}
    )
    provider = LocalProvider({"child": spec})

    def deploy(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        result = provider(logger, config)
        _wait_for(report_dir / f"{result.instance_id}.json")
        return result

    scripts = DeployScripts()
    scripts.set_deploy_functions("LOCAL", deploy)
    result = await scripts.deploy({"provider": "LOCAL", "service_name": "child"})
    assert result is not None
    return result


def _has_exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def main() -> None:
    result = asyncio.run(_deploy(Path(sys.argv[1])))  # joins the pool thread on the way out
    time.sleep(_GRACE)
    alive = not _has_exited(int(result.info["pid"]))
    report = {"instance_id": result.instance_id, "info": result.info, "alive": alive}
    print(json.dumps(report), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
