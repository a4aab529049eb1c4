"""FogVerse's live-video shape on this project: camera -> JPEG frames -> "inference" -> viewer.

Written as FogVerse users write it (live-yolov5): an input component pairs an
OpenCVConsumer with a ConsumerStorage and a CsvLogging Producer; the inference
component pairs a Consumer + ConsumerStorage with a Producer that runs the model
in an executor and sends JPEG data URLs on a topic per camera. Only the imports
differ from FogVerse's code. The edge cluster (LOCAL_KAFKA) carries the frames;
the results go to the cloud cluster (CLOUD_KAFKA; the same one unless set).

    DEVICE=0 python -m examples.video.pipeline          # a webcam
    python -m examples.video.pipeline --frames 90       # a clip it writes itself

CSV logs land in examples/video/logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fogverse import Consumer, ConsumerStorage, OpenCVConsumer, Producer
from fogverse.broker import kafka_bootstrap
from fogverse.logging import CsvLogging
from fogverse.topics import apply_topic_file
from fogverse.util import get_cam_id, get_header, get_timestamp_str, numpy_to_base64_url

HERE = Path(__file__).parent
SIZE = (640, 480)


def live() -> bool:
    """A camera or stream: keep only the newest frame. A file: keep every frame."""
    device = os.environ.get("DEVICE", "0")
    return device.isdigit() or "://" in device


class MyStorage(OpenCVConsumer, ConsumerStorage):
    def __init__(self) -> None:
        self.consumer_servers = os.environ["LOCAL_KAFKA"]
        OpenCVConsumer.__init__(self)
        ConsumerStorage.__init__(self, keep_messages=not live())
        self.consumer.set(cv2.CAP_PROP_FRAME_WIDTH, SIZE[0])
        self.consumer.set(cv2.CAP_PROP_FRAME_HEIGHT, SIZE[1])


class MyFrameProducer(CsvLogging, Producer):
    encode_encoding = "jpg"  # frames leave as JPEG, about a tenth of their raw size

    def __init__(self, consumer: ConsumerStorage) -> None:
        self.consumer = consumer
        self.cam_id = get_cam_id()
        self.producer_topic = "input"
        self.consumer_servers = os.environ["LOCAL_KAFKA"]
        self.frame_idx = 1
        CsvLogging.__init__(self)
        Producer.__init__(self)

    async def receive(self) -> Any:
        return await self.consumer.get()

    async def send(self, data: bytes) -> None:  # type: ignore[override]
        key = str(self.frame_idx).encode()
        headers = [("cam", self.cam_id.encode()), ("frame", str(self.frame_idx).encode()),
                   ("timestamp", get_timestamp_str().encode())]
        await super().send(data, key=key, headers=headers)
        self.frame_idx += 1


class InferenceStorage(Consumer, ConsumerStorage):
    def __init__(self, frames: int) -> None:
        self.consumer_topic = ["input"]
        self.consumer_servers = os.environ["LOCAL_KAFKA"]
        Consumer.__init__(self, idle_timeout=5.0, max_messages=frames)
        ConsumerStorage.__init__(self, keep_messages=not live())


class MyCloud(CsvLogging, Producer):
    def __init__(self, consumer: ConsumerStorage) -> None:
        self.consumer = consumer
        self.consumer_servers = os.environ["LOCAL_KAFKA"]
        self.producer_servers = os.environ["CLOUD_KAFKA"]
        self.producer_topic = "final_cam_1"
        CsvLogging.__init__(self)
        Producer.__init__(self)

    async def receive(self) -> Any:
        return await self.consumer.get()

    async def process(self, img: np.ndarray) -> np.ndarray:
        return await self._loop.run_in_executor(None, self._process, img)

    def _process(self, img: np.ndarray) -> np.ndarray:
        edges = cv2.Canny(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 80, 160)  # the "model"
        img = img.copy()
        img[edges > 0] = (0, 0, 255)
        return img

    def encode(self, img: np.ndarray) -> bytes:
        return numpy_to_base64_url(img, "jpg").encode()

    async def send(self, data: bytes) -> None:  # type: ignore[override]
        assert self.message is not None
        headers = [*self.message.headers, ("type", b"final"), ("from", b"cloud")]
        self.producer_topic = f"final_{get_header(headers, 'cam')}"
        await super().send(data, headers=headers)


def write_clip(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, SIZE)
    for i in range(frames):
        img = np.full((SIZE[1], SIZE[0], 3), 40, dtype=np.uint8)
        cv2.circle(img, (40 + (i * 9) % 560, 240), 50, (200, 220, 60), -1)
        writer.write(img)
    writer.release()
    return path


async def run(frames: int) -> None:
    await apply_topic_file(HERE / "topic.yaml")
    camera = MyStorage()
    storage = InferenceStorage(frames)
    components = [camera.run(), MyFrameProducer(camera).run(),
                  storage.run(), MyCloud(storage).run()]
    await asyncio.gather(*components)
    print(f"frames read {camera.frames_read}, dropped at the camera "
          f"{camera.frames_dropped + camera.dropped}, dropped before inference {storage.dropped}; "
          f"logs in {HERE / 'logs'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=90)
    args = parser.parse_args()
    os.environ.setdefault("CAM_ID", "1")
    with tempfile.TemporaryDirectory() as tmp, kafka_bootstrap() as servers:
        os.environ.setdefault("LOCAL_KAFKA", servers)
        os.environ.setdefault("CLOUD_KAFKA", servers)
        if "DEVICE" not in os.environ:
            os.environ["DEVICE"] = str(write_clip(Path(tmp) / "clip.avi", args.frames))
        asyncio.run(run(args.frames))


if __name__ == "__main__":
    main()
