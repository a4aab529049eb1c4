"""The demo's slow stage: it looks at each camera frame, deliberately slowly.

Each frame costs ``ANALYSIS_SECONDS`` (default 0.04 s: 25 frames/s per
instance), the time a small model would take on a phone. The real work here is
tiny (brightness and how much the frame moved); the rest is waiting, so the
demo shows scaling without burning the machine's CPUs. The result leaves
without the pixels, with who analysed it (instance and node).

A node agent starts it as an instance of the ``AGENT`` service the master
declares; topics, group and servers come from the environment it sets:

    python -m examples.demo.analysis
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import numpy as np

from fogverse import Consumer
from fogverse.constants import ENV_INSTANCE_ID, ENV_NODE_ID

__all__ = ["ENV_ANALYSIS_SECONDS", "FrameAnalysis", "analyse"]

ENV_ANALYSIS_SECONDS = "ANALYSIS_SECONDS"


def analyse(frame: np.ndarray[Any, Any]) -> dict[str, float]:
    """Mean brightness (0-255) and motion: the gap between the frame's two halves."""
    gray = frame.mean(axis=2) if frame.ndim == 3 else frame
    half = gray.shape[1] // 2
    motion = float(np.abs(gray[:, :half] - gray[:, half:2 * half]).mean())
    return {"brightness": round(float(gray.mean()), 2), "motion": round(motion, 2)}


class FrameAnalysis(Consumer):
    """Frames in, ``{"id", "camera", "brightness", "motion", "by", "node"}`` out."""

    def __init__(self, seconds: float, instance_id: str = "", node_id: str = "",
                 **settings: Any) -> None:
        super().__init__(**settings)
        self.seconds = seconds
        self.instance_id = instance_id
        self.node_id = node_id

    def process(self, data: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        result = analyse(data["frame"])
        # Pad to the stage's cost: a model on a phone, without heating this machine.
        time.sleep(max(0.0, self.seconds - (time.monotonic() - started)))
        return {"id": data["id"], "camera": data.get("camera"), "sent": data.get("sent"),
                **result, "by": self.instance_id, "node": self.node_id}


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stage = FrameAnalysis(
        float(os.environ.get(ENV_ANALYSIS_SECONDS, "0.04")),
        os.environ.get(ENV_INSTANCE_ID, ""), os.environ.get(ENV_NODE_ID, ""),
        # Small batches: a rebalance or SIGTERM is served between them.
        batch_size=5, group_protocol=os.environ.get("GROUP_PROTOCOL", "consumer"),
    )
    asyncio.run(stage.run())


if __name__ == "__main__":
    main()
