"""A real parallel stage process, for shutdown tests.

    python tests/parallel/stage_app.py SERVERS SOURCE TARGET GROUP

Prints "started" before running and "stopped consumed=N" after a clean stop.
"""

from __future__ import annotations

import asyncio
import sys

from fogverse.parallel import ParallelConsumer
from tests.parallel.procs import Tagged


def main() -> None:
    servers, source, target, group = sys.argv[1:5]
    stage = ParallelConsumer(processor=Tagged(delay=0.005), process_number=2,
                             consumer_topic=source, producer_topic=target,
                             consumer_servers=servers, group_id=group, heartbeat=False)
    print("started", flush=True)
    asyncio.run(stage.run())
    print(f"stopped consumed={stage.stats.consumed}", flush=True)


if __name__ == "__main__":
    main()
