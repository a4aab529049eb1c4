"""The README's other runnable examples, run as a user would, against the test broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


def run_example(bootstrap: str, *argv: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DEVICE", "LOCAL_KAFKA", "CLOUD_KAFKA")}
    done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT,
                          env={**env, "FOGVERSE_BOOTSTRAP": bootstrap},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def test_video_pipeline_example_runs_every_frame_through(kafka_bootstrap: str) -> None:
    out = run_example(kafka_bootstrap, "examples.video.pipeline", "--frames", "20")
    # The inference side stops after 20 frames: the run ending means all 20 arrived.
    assert "frames read 20, dropped at the camera 0, dropped before inference 0" in out


def test_parallel_inference_example_runs_on_worker_processes(kafka_bootstrap: str) -> None:
    out = run_example(kafka_bootstrap, "examples.parallel_inference", "--frames", "40",
                      "--workers", "2")
    assert "40 alerts from 40 frames, 0 out of order" in out
