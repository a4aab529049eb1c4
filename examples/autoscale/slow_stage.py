"""A stage slower than its input: the Master's job is to add instances of it.

Each message costs ``SLOW_SECONDS`` (default 0.01 s, so ~100 messages/s per
instance). Topics, servers and group come from the environment the master's
LOCAL provider sets (CONSUMER_TOPIC, PRODUCER_TOPIC, GROUP_ID,
FOGVERSE_BOOTSTRAP), so every instance is the same command:

    python -m examples.autoscale.slow_stage
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fogverse import Consumer
from fogverse.heartbeat import start_heartbeats


class SlowStage(Consumer):
    """Forwards every message unchanged after ``SLOW_SECONDS`` of pretend work."""

    # Heartbeats from a thread beside the stage: this is how the master sees it.
    _background_starters = [start_heartbeats]

    def __init__(self, seconds: float, **settings: Any) -> None:
        super().__init__(**settings)
        self.seconds = seconds

    def process(self, data: Any) -> Any:
        time.sleep(self.seconds)  # CPU-bound work in a real stage
        return data


def main() -> None:
    seconds = float(os.environ.get("SLOW_SECONDS", "0.01"))
    # Small batches: a batch blocks the loop for batch_size * seconds, and a
    # rebalance or SIGTERM is served between batches.
    stage = SlowStage(seconds, batch_size=10)
    asyncio.run(stage.run())


if __name__ == "__main__":
    main()
