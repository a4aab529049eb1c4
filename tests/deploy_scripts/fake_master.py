"""A throwaway "master" process: deploys one LOCAL child, prints its pid, sleeps.

The deploy runs inside ``asyncio.run`` so its worker thread is gone by the time
the pid is printed: the child must survive that and die only with this process.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from deploy_scripts import DeployScripts, LocalProvider, ServiceSpec

__all__ = ["main"]


async def _deploy(report_dir: str) -> int:
    here = str(Path(__file__).parent)
    spec = ServiceSpec("child", module="child_app", cwd=here, env={"FV_REPORT_DIR": report_dir})
    scripts = DeployScripts()
    scripts.set_deploy_functions("LOCAL", LocalProvider({"child": spec}))
    result = await scripts.deploy({"provider": "LOCAL", "service_name": "child"})
    assert result is not None
    return int(result.info["pid"])


def main() -> None:
    pid = asyncio.run(_deploy(sys.argv[1]))
    print(pid, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
