"""NumPy frames through a real stage, and FogVerse-style profiling rows."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fogverse import Consumer, Producer
from fogverse.codec import DefaultCodec
from tests.conftest import create_topic
from tests.kafka_io import read

pytestmark = pytest.mark.kafka


class Frames(Producer):
    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.rng = np.random.default_rng(7)
        self.sent: list[np.ndarray] = []

    def receive(self) -> dict[str, Any]:
        frame = self.rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
        self.sent.append(frame)
        return {"frame": frame, "n": len(self.sent)}


class Invert(Consumer):
    def process(self, data: dict[str, Any]) -> dict[str, Any]:
        data["frame"] = 255 - data["frame"]
        data["mean"] = np.float32(data["frame"].mean())
        return data


async def test_numpy_frames_round_trip_through_a_stage(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst = create_topic(admin, unique("np-in")), create_topic(admin, unique("np-out"))
    profile = tmp_path / "profile.csv"
    source = Frames(producer_topic=src, consumer_servers=kafka_bootstrap, max_messages=20,
                    heartbeat=False)
    stage = Invert(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                   group_id=unique("np"), max_messages=20, heartbeat=False,
                   profiling_csv=str(profile))
    await asyncio.wait_for(asyncio.gather(source.run(), stage.run()), 60)

    codec = DefaultCodec()
    out = read(kafka_bootstrap, dst, 20)
    assert len(out) == 20
    for record in out:
        data = codec.decode(record.value or b"", "application/msgpack")
        original = source.sent[data["n"] - 1]
        assert data["frame"].dtype == np.uint8 and data["frame"].shape == (48, 64, 3)
        np.testing.assert_array_equal(data["frame"], 255 - original)

    rows = list(csv.DictReader(profile.open()))
    assert len(rows) == 20
    assert {row["topic"] for row in rows} == {src}
    assert all(float(row["process_ms"]) >= 0 for row in rows)
    assert stage.stats.step_seconds["process"] > 0
