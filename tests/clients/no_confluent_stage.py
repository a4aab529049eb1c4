"""A stage run in a process where confluent_kafka cannot be imported.

    python no_confluent_stage.py SERVERS SOURCE TARGET GROUP COUNT

Prints the backend's name, then ``consumed=N``; the log goes to stderr.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import logging
import sys
from typing import Any


class NoConfluent(importlib.abc.MetaPathFinder):
    """As on a device where librdkafka has no wheel: the import fails."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "confluent_kafka" or name.startswith("confluent_kafka."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoConfluent())




async def main(servers: str, source: str, target: str, group: str, count: int) -> None:
    from fogverse import Consumer

    class Doubler(Consumer):
        def process(self, data: int) -> int:
            return data * 2

    stage = Doubler(consumer_topic=source, producer_topic=target, consumer_servers=servers,
                    group_id=group, max_messages=count)
    await stage.run()
    print(stage._kafka().name, flush=True)
    print(f"consumed={stage.stats.consumed}", flush=True)
    # A second stage in the same process must not log the fallback again.
    second = Doubler(consumer_topic=source, producer_topic=target, consumer_servers=servers,
                     group_id=group, idle_timeout=0.5, heartbeat=False)
    await second.run()
    assert "confluent_kafka" not in sys.modules


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    servers, source, target, group, count = sys.argv[1:6]
    asyncio.run(main(servers, source, target, group, int(count)))
