"""The README's main command, for real: ``python -m examples.demo --short`` in a subprocess.

A real broker, a Master, three agent processes, instances started by the agents,
a camera and a sink. The demo's last line is its summary as JSON; the test holds
it to what the README promises: the stage scaled out and back in, and every
frame the camera sent reached the sink.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_short_demo_scales_out_and_in_and_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {**os.environ, "FOGVERSE_BOOTSTRAP": kafka_bootstrap}
    done = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--short", "--log-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=170,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads(lines[-1])
    assert summary["scaled_out"] >= 1 and summary["scaled_in"] >= 1, summary
    assert summary["produced"] > 0 and summary["lost"] == 0, summary
    assert summary["delivered"] == summary["produced"]
    assert summary["ok"] is True
    # Where the instances ran is the scheduler's choice; a phone at 15 % never gets one.
    assert summary["ran_on"] and "phone-low" not in summary["ran_on"]
    assert any(line.startswith("dashboard: http://127.0.0.1:") for line in lines)
    assert "\x1b[" not in done.stdout  # stdout is a pipe here: plain lines, no screen codes
