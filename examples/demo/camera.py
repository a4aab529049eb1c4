"""Both ends of the demo's pipeline: a camera-like source and a sink that counts.

The camera sends numbered NumPy frames at a rate the demo steps up and down
while it runs. The sink remembers every frame id it receives, so "messages
lost" at the end is counted, not assumed.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from typing import Any

import numpy as np

from examples.autoscale.feeder import Feeder
from fogverse import Consumer

__all__ = ["FRAME_SHAPE", "Camera", "FrameSink"]

FRAME_SHAPE = (48, 64, 3)
"""Small frames: the demo is about scaling, and the machine is shared."""


class Camera(Feeder):
    """Frames ``{"id", "camera", "sent", "frame"}`` at ``rate`` per second (0 pauses)."""

    topic_file = None  # the demo makes its topics itself

    def __init__(self, rate: float, camera: str = "cam-0", **settings: Any) -> None:
        super().__init__(rate, **settings)
        self.camera = camera
        rng = np.random.default_rng(7)
        # A moving scene from one noise image: each frame is the image shifted a little.
        self._scene = rng.integers(0, 256, size=FRAME_SHAPE, dtype=np.uint8)

    async def receive(self) -> dict[str, Any] | None:
        data = await super().receive()
        if data is None:
            return None
        data["camera"] = self.camera
        data["frame"] = np.roll(self._scene, data["id"] % FRAME_SHAPE[1], axis=1)
        return data


class FrameSink(Consumer):
    """Counts what arrives: ids seen (and how often), per-second arrivals, who did the work."""

    topic_file = None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.counts: Counter[int] = Counter()
        self.by_node: Counter[str] = Counter()
        self.arrivals: list[float] = []
        """Monotonic arrival time of each result, for rates over any window."""

    def process(self, result: dict[str, Any]) -> None:
        self.counts[int(result["id"])] += 1
        self.by_node[str(result.get("node") or "?")] += 1
        self.arrivals.append(time.monotonic())
        return None

    @property
    def received(self) -> int:
        return len(self.counts)

    @property
    def duplicates(self) -> int:
        return sum(self.counts.values()) - len(self.counts)

    def missing(self, produced: int) -> list[int]:
        return [n for n in range(produced) if n not in self.counts]

    def rate(self, since: float, until: float) -> float:
        """Results per second that arrived in ``[since, until)`` (monotonic seconds)."""
        if until <= since:
            return 0.0
        # Arrivals are appended in time order (one event loop), so they stay sorted.
        count = bisect.bisect_left(self.arrivals, until) - bisect.bisect_left(self.arrivals, since)
        return count / (until - since)
