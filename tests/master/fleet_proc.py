"""The master's fleet service alone in a process, for tests that SIGKILL it.

    python -m tests.master.fleet_proc '<FleetSettings as JSON>'
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from master.fleet import FleetService, FleetSettings

REPO = Path(__file__).resolve().parents[2]


def start_fleet(settings: dict[str, Any], log_dir: Path, name: str) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen([sys.executable, "-m", "tests.master.fleet_proc",
                                 json.dumps(settings)], cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT)
    finally:
        log.close()


async def _main(settings: FleetSettings) -> None:
    service = FleetService(settings)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, service.stop)
    await service.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main(FleetSettings(**json.loads(sys.argv[1]))))
