"""Video files written by the tests themselves, with frames that say their own number."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LEVEL_STEP = 4
"""Frame i is a uniform grey of i * LEVEL_STEP, which survives JPEG and a blur."""


def write_clip(path: Path, frames: int, fps: float = 30.0, size: tuple[int, int] = (160, 120),
               step: int = LEVEL_STEP) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), i * step, dtype=np.uint8))
    writer.release()
    return path


def frame_number(img: np.ndarray, step: int = LEVEL_STEP) -> int:
    """Which frame of a clip ``img`` shows (its grey level, rounded)."""
    return round(float(img.mean()) / step)
