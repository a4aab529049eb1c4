"""A real stage process for shutdown tests: forwards ids slowly.

    python tests/runtime/slow_stage.py SERVERS SOURCE TARGET GROUP [IDLE_SECONDS]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from fogverse import Consumer


class Slow(Consumer):
    def process(self, data: Any) -> Any:
        time.sleep(0.002)
        return data


def main() -> None:
    servers, source, target, group = sys.argv[1:5]
    idle = float(sys.argv[5]) if len(sys.argv) > 5 else None
    stage = Slow(consumer_topic=source, producer_topic=target, consumer_servers=servers,
                 group_id=group, idle_timeout=idle, batch_size=50, heartbeat=False)
    print("started", flush=True)
    asyncio.run(stage.run())
    print(f"stopped consumed={stage.stats.consumed}", flush=True)


if __name__ == "__main__":
    main()
