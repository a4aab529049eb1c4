"""A Master SIGKILLed during a scaled-out LOCAL run: its stages run on, the next one adopts them.

Real broker, real ``fogverse master`` processes, real LOCAL children (stages
built on the runtime), a real SIGKILL. Afterwards the same instances run (same
ids, same pids), none is deployed twice, and the new master goes on scaling.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import Producer

from fogverse.control import AutoScaleRequest, encode_control
from tests.polling import wait_until_sync

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class MasterProcess:
    """``fogverse master --config`` in the background, its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fogverse", "master", "--config", str(config),
                 "--http-port", "0"], stderr=out, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.port = 0

        def serving() -> bool:
            assert self.proc.poll() is None, "master exited:\n" + self.text()
            found = re.search(r"status on http://[\d.]+:(\d+)/status", self.text())
            self.port = int(found.group(1)) if found else 0
            return bool(found)

        wait_until_sync(serving, timeout=60, what="the master's status server")

    def text(self) -> str:
        return self.log.read_text()

    def stage(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=10) as r:
            stages: list[dict[str, Any]] = json.load(r)["stages"]
        return stages[0] if stages else {}

    def live(self) -> list[str]:
        stage = self.stage()
        plan = stage.get("plan") or {}
        heard, deployed = sorted(stage.get("instances") or []), sorted(plan.get("deployed") or [])
        return heard if heard == deployed else []  # [] until heard and deployed agree


def children(pid: int) -> dict[str, int]:
    """Instance id -> pid of every LOCAL child of ``pid``."""
    found = {}
    for child in psutil.Process(pid).children():
        env_id = child.environ().get("FOGVERSE_INSTANCE_ID")
        if env_id:
            found[env_id] = child.pid
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_sigkilled_master_s_instances_run_on_and_are_adopted_without_duplicates(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    control, source, target, group = (unique(p) for p in ("control", "in", "out", "slow"))
    config = tmp_path / "master.toml"
    config.write_text(f"""
consumer_topic = "{control}"
consumer_servers = "{kafka_bootstrap}"
consumer_group_id = "{unique('master')}"
state_topic = "{unique('state')}"
included_worker = ["AUTO_DEPLOYER"]
log_dir = "{tmp_path / 'logs'}"

[auto_deployer_config]
deploy_delay = 1
after_heartbeat_delay = 1

[services.slow]
module = "examples.autoscale.slow_stage"
cwd = "{ROOT}"
source_topic = "{source}"
target_topic = "{target}"
group_id = "{group}"
min_instance = 2
max_instance = 3

[services.slow.env]
CONSUMER_TOPIC = "{source}"
PRODUCER_TOPIC = "{target}"
GROUP_ID = "{group}"
CONTROL_TOPIC = "{control}"
""")
    first = MasterProcess(config, tmp_path / "first.log")
    pids: dict[str, int] = {}
    second: MasterProcess | None = None
    try:
        wait_until_sync(lambda: len(first.live()) == 2, timeout=90,
                        what="two instances heartbeating")
        before = first.live()
        pids = children(first.proc.pid)
        assert sorted(pids) == before
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)
        assert all(alive(pid) for pid in pids.values()), "the stages died with their master"

        second = MasterProcess(config, tmp_path / "second.log")
        wait_until_sync(lambda: second is not None and second.live() == before, timeout=90,
                        what="the same instances, adopted and heartbeating")
        assert all(alive(pid) for pid in pids.values())
        assert second.text().count("adopted running instance") == 2
        assert "started instance" not in second.text()          # no duplicate

        # Scaling goes on: a request raising the floor to 3 starts exactly one more.
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(control, encode_control(
            AutoScaleRequest(source, target, "slow", "LOCAL", 3, min_instance=3), "test"))
        assert producer.flush(30) == 0
        wait_until_sync(lambda: second is not None and len(second.live()) == 3, timeout=90,
                        what="a third instance")
        assert set(before) < set(second.live())
        assert second.text().count("started instance") == 1
        every = {**pids, **children(second.proc.pid)}
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(60) == 0, second.text()
        wait_until_sync(lambda: not any(alive(p) for p in every.values()), timeout=30,
                        what="a graceful stop to stop every instance, adopted ones too")
    finally:
        for m in (first, second):
            if m is not None and m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait()
        for pid in pids.values():
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
