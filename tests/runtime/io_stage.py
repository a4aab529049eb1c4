"""A real stage process whose process() waits on I/O, many messages at once.

    python tests/runtime/io_stage.py SERVERS SOURCE TARGET GROUP [IDLE_SECONDS]
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from fogverse import Consumer


class RemoteCall(Consumer):
    async def process(self, data: Any) -> Any:
        await asyncio.sleep(0.02)  # a model server's round trip
        return data


def main() -> None:
    servers, source, target, group = sys.argv[1:5]
    idle = float(sys.argv[5]) if len(sys.argv) > 5 else None
    stage = RemoteCall(consumer_topic=source, producer_topic=target, consumer_servers=servers,
                       group_id=group, idle_timeout=idle, concurrency=16, heartbeat=False)
    print("started", flush=True)
    asyncio.run(stage.run())
    print(f"stopped consumed={stage.stats.consumed}", flush=True)


if __name__ == "__main__":
    main()
