"""A CPU-heavy stage in worker processes: camera -> detect (2 workers) -> alerts.

The "model" is loaded once per worker in setup(), never pickled per message;
frames travel as NumPy arrays (msgpack, no pickle); alerts come out in frame
order per camera even though the workers finish out of order.

    python -m examples.parallel_inference [--frames N] [--workers W]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

import numpy as np

from fogverse import Consumer, Producer
from fogverse.broker import kafka_bootstrap
from fogverse.parallel import ParallelConsumer, Processor

CAMERAS = 3


class Cameras(Producer):
    """Small grey frames from three cameras, keyed by camera."""

    def __init__(self, topic: str, servers: str, count: int) -> None:
        super().__init__(producer_topic=topic, consumer_servers=servers, max_messages=count,
                         heartbeat=False)
        self.frame = 0
        self.rng = np.random.default_rng(7)

    def receive(self) -> dict[str, Any]:
        self.frame += 1
        camera = self.frame % CAMERAS
        assert self.message is not None
        self.message.key = f"camera-{camera}".encode()
        pixels = self.rng.integers(0, 256, size=(48, 64), dtype=np.uint8)
        return {"camera": camera, "frame": self.frame, "pixels": pixels}


class Detector(Processor):
    """Pure-Python work on each frame, with a 'model' built once per worker."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.kernel: list[int] = []

    def setup(self) -> None:
        # Stands for loading weights: done in the worker, so the Processor that
        # crosses the process boundary (once) stays small.
        self.kernel = [1, 2, 1]

    def process(self, data: dict[str, Any]) -> dict[str, Any]:
        pixels = data["pixels"].tolist()
        bright = 0
        for row in pixels:
            for a, b, c in zip(row, row[1:], row[2:], strict=False):
                if a * self.kernel[0] + b * self.kernel[1] + c * self.kernel[2] > self.threshold:
                    bright += 1
        return {"camera": data["camera"], "frame": data["frame"], "bright": bright}


class Alerts(Consumer):
    """The sink: counts alerts and checks frame order per camera."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.last: dict[int, int] = {}
        self.seen = 0
        self.out_of_order = 0

    def process(self, alert: dict[str, Any]) -> None:
        camera, frame = alert["camera"], alert["frame"]
        if frame <= self.last.get(camera, 0):
            self.out_of_order += 1
        self.last[camera] = frame
        self.seen += 1


async def pipeline(servers: str, frames: int, workers: int) -> None:
    run = uuid.uuid4().hex[:6]
    raw, found = f"frames-{run}", f"alerts-{run}"
    detect = ParallelConsumer(
        processor=Detector(threshold=600), process_number=workers, consumer_topic=raw,
        producer_topic=found, consumer_servers=servers, group_id=f"detect-{run}",
        max_messages=frames, heartbeat=False,
    )
    sink = Alerts(consumer_topic=found, consumer_servers=servers, group_id=f"alerts-{run}",
                  max_messages=frames, heartbeat=False)
    await asyncio.gather(Cameras(raw, servers, frames).run(), detect.run(), sink.run())
    print(f"{sink.seen} alerts from {frames} frames, {sink.out_of_order} out of order; "
          f"{workers} workers spent {detect.stats.step_seconds['process']:.2f} s in process()")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with kafka_bootstrap() as servers:
        asyncio.run(pipeline(servers, args.frames, args.workers))


if __name__ == "__main__":
    main()
