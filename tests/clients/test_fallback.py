"""Without confluent-kafka a stage runs on aiokafka, and says so once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import create_topic
from tests.kafka_io import produce_msgpack, read

STAGE = Path(__file__).with_name("no_confluent_stage.py")
ROOT = Path(__file__).parents[2]


def test_a_stage_falls_back_to_aiokafka_when_confluent_kafka_cannot_be_imported(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("nolib-in")), create_topic(admin, unique("nolib-out"))
    produce_msgpack(kafka_bootstrap, src, range(50))
    done = subprocess.run(
        [sys.executable, str(STAGE), kafka_bootstrap, src, dst, unique("nolib"), "50"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["aiokafka", "consumed=50"]
    assert done.stderr.count("confluent-kafka cannot be imported; using the aiokafka") == 1
    assert sorted(r.data for r in read(kafka_bootstrap, dst, 50)) == [i * 2 for i in range(50)]
