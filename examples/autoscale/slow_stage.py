"""A stage slower than its input: the Master's job is to add instances of it.

Each message costs ``SLOW_SECONDS`` (default 0.01 s, so ~100 messages/s per
instance). Topics, servers and group come from the environment the master's
LOCAL provider sets (CONSUMER_TOPIC, PRODUCER_TOPIC, GROUP_ID,
FOGVERSE_BOOTSTRAP), so every instance is the same command:

    python -m examples.autoscale.slow_stage
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from fogverse import Consumer
from fogverse.observer import ENV_INSTANCE_ID


class SlowStage(Consumer):
    """Forwards every message after ``SLOW_SECONDS`` of pretend work.

    Dict messages get ``by`` (this instance's id) and ``at`` (when it processed
    them, epoch seconds) added, so benchmarks can see who did what, and when.
    """

    def __init__(self, seconds: float, instance_id: str = "", **settings: Any) -> None:
        super().__init__(**settings)
        self.seconds = seconds
        self.instance_id = instance_id

    def process(self, data: Any) -> Any:
        time.sleep(self.seconds)  # CPU-bound work in a real stage
        if isinstance(data, dict):
            data["by"] = self.instance_id
            data["at"] = time.time()
        return data


def main() -> None:
    # Each instance's output goes to its own log file (LOCAL provider): say when.
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    seconds = float(os.environ.get("SLOW_SECONDS", "0.01"))
    # Small batches: a batch blocks the loop for batch_size * seconds, and a
    # rebalance or SIGTERM is served between batches.
    stage = SlowStage(
        seconds, os.environ.get(ENV_INSTANCE_ID, ""), batch_size=10,
        group_protocol=os.environ.get("GROUP_PROTOCOL", "consumer"),
    )
    asyncio.run(stage.run())


if __name__ == "__main__":
    main()
