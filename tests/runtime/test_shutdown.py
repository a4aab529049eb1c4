"""SIGTERM mid-stream, then a restart: nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fogverse.constants import ENV_CLIENT
from tests.conftest import create_topic
from tests.kafka_io import produce_msgpack, read

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

STAGE = Path(__file__).with_name("slow_stage.py")
ROOT = Path(__file__).parents[2]


def _start(*args: str) -> subprocess.Popen[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", ENV_CLIENT: os.environ[ENV_CLIENT]}
    return subprocess.Popen([sys.executable, str(STAGE), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def test_sigterm_mid_stream_then_restart_loses_nothing(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], client: str
) -> None:
    src, dst = create_topic(admin, unique("term-in"), 2), create_topic(admin, unique("term-out"))
    count = 3000
    produce_msgpack(kafka_bootstrap, src, ({"id": i} for i in range(count)))
    group = unique("term")

    first = _start(kafka_bootstrap, src, dst, group)
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "started"
    # Wait until it is mid-stream: some output exists, far from all of it.
    partial = read(kafka_bootstrap, dst, 200, timeout=60, settle=0)
    assert 200 <= len(partial) < count
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    consumed_first = int(out.rsplit("consumed=", 1)[1].split()[0])
    assert consumed_first < count, "the test stopped too late to be mid-stream"

    second = _start(kafka_bootstrap, src, dst, group, "4")
    out2, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out2
    consumed_second = int(out2.rsplit("consumed=", 1)[1].split()[0])

    ids = {r.data["id"] for r in read(kafka_bootstrap, dst, count)}  # type: ignore[index]
    assert ids == set(range(count)), f"lost {sorted(set(range(count)) - ids)[:10]}"
    # The first run committed what it finished, so the restart did not redo it all.
    assert consumed_second < count
