"""examples/tasks/run.py for real: a fleet, three agent processes, tasks placed by policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


def test_tasks_run_on_the_devices_the_policies_allow(kafka_bootstrap: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.tasks.run", "--tasks", "4"], cwd=ROOT,
        env={**os.environ, "FOGVERSE_BOOTSTRAP": kafka_bootstrap},
        capture_output=True, text=True, timeout=150,
    )
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["completed"] == summary["submitted"] == 5
    assert summary["primes"] == [2262, 4203, 6057, 7837]  # pi(20k), pi(40k), pi(60k), pi(80k)
    assert "phone-low" not in summary["by_node"]  # 15 %, not charging: under the minimum
    assert set(summary["by_node"]) <= {"desktop", "phone-charging"}
