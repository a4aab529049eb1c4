"""A FogVerse-shaped video pipeline on a real broker, written as FogVerse users write it.

Input component: OpenCVConsumer + ConsumerStorage hands frames of a video file to a
CsvLogging Producer that tags them (cam, frame, timestamp) and sends them as JPEG.
Inference component: Consumer + ConsumerStorage hands them to a CsvLogging Producer
that runs a cheap OpenCV operation in an executor and sends a JPEG data URL on a
topic named after the camera. The test reads that topic as the sink.
"""

from __future__ import annotations

import asyncio
import base64
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fogverse import Consumer, ConsumerStorage, CsvLogging, OpenCVConsumer, Producer
from fogverse.constants import CT_JPEG
from fogverse.util import get_cam_id, get_header, get_timestamp_str, numpy_to_base64_url
from tests.conftest import create_topic
from tests.kafka_io import read
from tests.video_clips import frame_number, write_clip

FRAMES = 40


class CameraStorage(OpenCVConsumer, ConsumerStorage):
    def __init__(self, device: str, servers: str) -> None:
        self.device = device
        self.consumer_servers = servers
        OpenCVConsumer.__init__(self)
        ConsumerStorage.__init__(self, keep_messages=True)


class FrameProducer(CsvLogging, Producer):
    encode_encoding = "jpg"

    def __init__(self, consumer: ConsumerStorage, topic: str, servers: str, logs: Path) -> None:
        self.consumer = consumer
        self.cam_id = get_cam_id()
        self.producer_topic = topic
        self.producer_servers = servers
        self.consumer_servers = servers
        self.frame_idx = 1
        CsvLogging.__init__(self, dirname=logs)
        Producer.__init__(self)

    async def receive(self) -> Any:
        return await self.consumer.get()

    async def send(self, data: bytes) -> None:  # type: ignore[override]
        key = str(self.frame_idx).encode()
        headers = [
            ("cam", self.cam_id.encode()),
            ("frame", str(self.frame_idx).encode()),
            ("timestamp", get_timestamp_str().encode()),
        ]
        await super().send(data, key=key, headers=headers)
        self.frame_idx += 1


class InferenceStorage(Consumer, ConsumerStorage):
    def __init__(self, topic: str, servers: str, group: str) -> None:
        self.consumer_topic = [topic]
        self.consumer_servers = servers
        self.group_id = group
        Consumer.__init__(self, max_messages=FRAMES)
        ConsumerStorage.__init__(self, keep_messages=True)


class Inference(CsvLogging, Producer):
    def __init__(self, consumer: ConsumerStorage, final_prefix: str, servers: str,
                 logs: Path) -> None:
        self.consumer = consumer
        self.final_prefix = final_prefix
        self.producer_servers = servers
        self.consumer_servers = servers
        self.producer_topic = f"{final_prefix}-unused"
        CsvLogging.__init__(self, dirname=logs, add_header=["shape"])
        Producer.__init__(self)

    async def receive(self) -> Any:
        return await self.consumer.get()

    async def process(self, img: np.ndarray) -> np.ndarray:
        return await self._loop.run_in_executor(None, self._process, img)

    def _process(self, img: np.ndarray) -> np.ndarray:
        self._log_data["shape"] = "x".join(map(str, img.shape))
        return cv2.GaussianBlur(img, (5, 5), 0)

    def encode(self, img: np.ndarray) -> bytes:
        return numpy_to_base64_url(img, "jpg").encode()

    async def send(self, data: bytes) -> None:  # type: ignore[override]
        assert self.message is not None
        headers = [*self.message.headers, ("type", b"final")]
        cam_id = get_header(headers, "cam")
        self.producer_topic = f"{self.final_prefix}-{cam_id}"
        await super().send(data, headers=headers)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


async def test_frames_flow_in_order_with_headers_as_jpeg_and_are_logged(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAM_ID", "1")
    monkeypatch.delenv("DEVICE", raising=False)
    clip = write_clip(tmp_path / "clip.avi", FRAMES)
    input_topic = create_topic(admin, unique("video-input"))
    prefix = unique("final")
    final_topic = create_topic(admin, f"{prefix}-cam_1")

    camera = CameraStorage(str(clip), kafka_bootstrap)
    frames = FrameProducer(camera, input_topic, kafka_bootstrap, tmp_path / "logs")
    storage = InferenceStorage(input_topic, kafka_bootstrap, unique("inference"))
    inference = Inference(storage, prefix, kafka_bootstrap, tmp_path / "logs")

    await asyncio.wait_for(asyncio.gather(
        camera.run(), frames.run(), storage.run(), inference.run()), 120)

    inputs = read(kafka_bootstrap, input_topic, FRAMES)
    assert [r.header("content-type") for r in inputs] == [CT_JPEG.encode()] * FRAMES
    finals = read(kafka_bootstrap, final_topic, FRAMES)
    assert [int(r.header("frame") or 0) for r in finals] == list(range(1, FRAMES + 1))
    for n, record in enumerate(finals):
        assert record.header("cam") == b"cam_1" and record.header("type") == b"final"
        assert record.header("timestamp") is not None and record.key == str(n + 1).encode()
        assert record.value is not None
        url = record.value.decode()
        assert url.startswith("data:image/jpg;base64,")
        img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8),
                           cv2.IMREAD_COLOR)
        assert frame_number(img) == n, "each output shows the frame its header names"

    sent_rows = csv_rows(tmp_path / "logs" / "log_FrameProducer.csv")
    assert [int(r["frame"]) for r in sent_rows] == list(range(1, FRAMES + 1))
    assert all(int(r["offset sent"]) >= 0 for r in sent_rows)
    cloud_rows = csv_rows(tmp_path / "logs" / "log_Inference.csv")
    assert sorted(int(r["frame"]) for r in cloud_rows) == list(range(1, FRAMES + 1))
    assert {r["topic from"] for r in cloud_rows} == {input_topic}
    assert {r["shape"] for r in cloud_rows} == {"120x160x3"}
    assert list(cloud_rows[0])[:4] == ["asctime", "name", "topic from", "topic to"]
