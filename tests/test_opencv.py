"""OpenCVConsumer: files end the stage, live mode drops and counts instead of lagging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fogverse import ConfigError, ConsumerStorage, OpenCVConsumer, Producer
from fogverse.codec import DefaultCodec
from fogverse.opencv import parse_device
from tests.conftest import create_topic
from tests.kafka_io import read
from tests.video_clips import frame_number, write_clip


class LiveCamera(OpenCVConsumer, ConsumerStorage):
    live = True  # a file standing in for a camera: read at its own 60 frames/s

    def __init__(self, device: str, servers: str) -> None:
        self.device = device
        self.consumer_servers = servers
        OpenCVConsumer.__init__(self)
        ConsumerStorage.__init__(self, keep_messages=False)


class SlowSender(Producer):
    encode_encoding = "png"

    def __init__(self, storage: ConsumerStorage, topic: str, servers: str,
                 **settings: Any) -> None:
        self.consumer = storage
        self.producer_topic = topic
        self.consumer_servers = servers
        Producer.__init__(self, **settings)

    async def receive(self) -> Any:
        return await self.consumer.get()

    async def process(self, frame: np.ndarray) -> np.ndarray:
        await asyncio.sleep(0.1)  # a model far slower than the camera
        return frame


async def test_live_mode_drops_and_counts_frames_when_the_stage_is_slower(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DEVICE", raising=False)
    total = 60
    clip = write_clip(tmp_path / "live.avi", total, fps=60.0)
    topic = create_topic(admin, unique("live"))
    camera = LiveCamera(str(clip), kafka_bootstrap)
    sender = SlowSender(camera, topic, kafka_bootstrap)

    await asyncio.wait_for(asyncio.gather(camera.run(), sender.run()), 120)

    sent = sender.stats.produced
    dropped = camera.frames_dropped + camera.dropped
    assert camera.frames_read == total
    assert dropped > 0 and sent < total, "a slow stage must skip frames, not queue them"
    assert sent + dropped == total, "every frame read was either sent or counted as dropped"
    records = read(kafka_bootstrap, topic, sent)
    assert len(records) == sent
    shown = [frame_number(DefaultCodec().decode(r.value or b"", "image/png")) for r in records]
    assert shown == sorted(set(shown)), "newer frames only, never an old one after a new one"
    assert shown[-1] >= total - 2, "the last frames sent are the newest ones"


def test_devices_parse_as_camera_index_or_path() -> None:
    assert parse_device("0") == 0 and parse_device(2) == 2
    assert parse_device("rtsp://cam/1") == "rtsp://cam/1"


async def test_a_missing_video_file_is_a_config_error_naming_device(tmp_path: Path) -> None:
    class Camera(OpenCVConsumer):
        device = str(tmp_path / "missing.mp4")
        producer_topic = "unused"

    with pytest.raises(ConfigError, match=r"DEVICE.*cannot open"):
        await Camera().run()


def test_device_env_wins_over_the_attribute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_clip(tmp_path / "env.avi", 3)

    class Camera(OpenCVConsumer):
        device = "not-this-one.mp4"
        producer_topic = "unused"

    monkeypatch.setenv("DEVICE", str(clip))
    camera = Camera()
    assert camera.consumer.isOpened()
    camera.close_consumer()


async def test_a_looping_file_starts_over_and_frames_go_straight_to_kafka(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DEVICE", raising=False)
    clip = write_clip(tmp_path / "loop.avi", 3)
    topic = create_topic(admin, unique("loop"))

    class Camera(OpenCVConsumer):
        device = str(clip)
        loop_video = True
        encode_encoding = "jpg"

    camera = Camera(producer_topic=topic, consumer_servers=kafka_bootstrap, max_messages=7)
    await asyncio.wait_for(camera.run(), 60)
    records = read(kafka_bootstrap, topic, 7)
    shown = [frame_number(DefaultCodec().decode(r.value or b"", "image/jpeg")) for r in records]
    assert shown == [0, 1, 2, 0, 1, 2, 0]


async def test_when_the_sender_stops_the_camera_side_stops_too(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DEVICE", raising=False)
    clip = write_clip(tmp_path / "endless.avi", 5)
    topic = create_topic(admin, unique("endless"))

    class EndlessCamera(LiveCamera):
        loop_video = True  # never ends by itself

    class FiveFrames(SlowSender):
        async def process(self, frame: np.ndarray) -> np.ndarray:
            return frame

    camera = EndlessCamera(str(clip), kafka_bootstrap)
    sender = FiveFrames(camera, topic, kafka_bootstrap, max_messages=5)
    await asyncio.wait_for(asyncio.gather(camera.run(), sender.run()), 60)
    assert sender.stats.produced == 5 and camera.stopping
    assert len(read(kafka_bootstrap, topic, 5)) == 5


async def test_a_stream_that_drops_is_reopened_with_backoff(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DEVICE", raising=False)
    clip = write_clip(tmp_path / "stream.avi", 3)
    topic = create_topic(admin, unique("stream"))

    class Stream(OpenCVConsumer):
        device = f"file://{clip}"  # a URL: its end looks like a dropped stream
        live = False
        reconnect_backoff = 0.05
        encode_encoding = "png"

    stream = Stream(producer_topic=topic, consumer_servers=kafka_bootstrap, max_messages=7)
    await asyncio.wait_for(stream.run(), 60)
    assert stream.reconnects >= 2
    records = read(kafka_bootstrap, topic, 7)
    shown = [frame_number(DefaultCodec().decode(r.value or b"", "image/png")) for r in records]
    assert shown == [0, 1, 2, 0, 1, 2, 0], "each reconnect resumes the stream"
