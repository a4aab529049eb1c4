"""A source at a steady, adjustable rate: numbered messages for the slow stage.

Each message is ``{"id": n, "sent": <epoch seconds>}``. The rate is a plain
attribute, so a benchmark or test can step it up and down while it runs; pacing
is by schedule, so the rate is the same every second (zero variance).

    python -m examples.autoscale.feeder TOPIC RATE [COUNT]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from fogverse import Producer


class Feeder(Producer):
    """Emits ids 0, 1, 2, ... at ``rate`` messages per second (0 pauses)."""

    def __init__(self, rate: float, **settings: Any) -> None:
        extra = dict(settings.pop("producer_extra", {}))
        # Learn partitions the master adds within a second, not five.
        extra.setdefault("topic.metadata.refresh.interval.ms", 1000)
        super().__init__(producer_extra=extra, **settings)
        self.rate = rate
        self.next_id = 0
        self._due = time.monotonic()

    async def receive(self) -> dict[str, Any] | None:
        while self.rate <= 0:
            if self.stopping:
                return None
            await asyncio.sleep(0.05)
            self._due = time.monotonic()
        now = time.monotonic()
        if now < self._due:
            await asyncio.sleep(self._due - now)
        # After a pause or a slow second, do not burst to catch up.
        self._due = max(self._due, time.monotonic() - 0.1) + 1.0 / self.rate
        n = self.next_id
        self.next_id += 1
        return {"id": n, "sent": time.time()}


def main() -> None:
    topic, rate = sys.argv[1], float(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    asyncio.run(Feeder(rate, producer_topic=topic, max_messages=count).run())


if __name__ == "__main__":
    main()
