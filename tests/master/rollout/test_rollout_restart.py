"""A master SIGKILLed in the middle of a rollout: the next one resumes it and finishes.

Real ``fogverse master`` processes, the rollout asked for with ``fogverse
rollout`` (the CLI), a real SIGKILL while the canary is watched. The stages run
on without their master; the next master reads the rollout from the state topic,
adopts the instances of both versions, watches the canary again and completes
the rollout. Every message fed meanwhile comes out.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rollout_helpers import VersionSink, accounted

from tests.master.master_helpers import FeederThread
from tests.polling import wait_until_sync

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


class MasterProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fogverse", "master", "--config", str(config),
                 "--http-port", "0"], stderr=out, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.port = 0

        def serving() -> bool:
            assert self.proc.poll() is None, "master exited:\n" + self.log.read_text()
            found = re.search(r"status on http://[\d.]+:(\d+)/status", self.log.read_text())
            self.port = int(found.group(1)) if found else 0
            return bool(found)

        wait_until_sync(serving, timeout=60, what="the master's status server")

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=10) as r:
            found: dict[str, Any] = json.load(r)
        return found

    def rollout(self) -> dict[str, Any]:
        found: dict[str, Any] = (self.status()["workers"].get("rollout") or {}).get("pass", {})
        return found

    def live(self) -> int:
        stages = self.status()["stages"]
        return sum(s["live"] for s in stages if s["plan"])


def test_a_master_killed_mid_rollout_is_restarted_and_finishes_it(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    control, source, target, group = (unique(p) for p in ("control", "in", "out", "pass"))
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

[rollout_config]
canary_window = 6
health_window = 2
min_sample = 10

[services.pass]
module = "examples.rollout.stage"
cwd = "{ROOT}"
source_topic = "{source}"
target_topic = "{target}"
group_id = "{group}"
min_instance = 2
max_instance = 2

[services.pass.env]
CONSUMER_TOPIC = "{source}"
PRODUCER_TOPIC = "{target}"
GROUP_ID = "{group}"
CONTROL_TOPIC = "{control}"

[services.pass.versions.v2]
env = {{ MODEL = "two" }}
""")
    out = VersionSink(kafka_bootstrap, target, unique("sink"))
    first = MasterProcess(config, tmp_path / "first.log")
    second: MasterProcess | None = None
    feeder: FeederThread | None = None
    try:
        wait_until_sync(lambda: first.live() == 2, timeout=90, what="two instances")
        feeder = FeederThread(100, producer_topic=source, consumer_servers=kafka_bootstrap,
                              control_topic=control)
        asked = subprocess.run(
            [sys.executable, "-m", "fogverse", "rollout", "pass", "--to", "v2", "--strategy",
             "canary", "--bootstrap", kafka_bootstrap, "--control-topic", control],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert asked.returncode == 0, asked.stderr
        wait_until_sync(lambda: first.rollout().get("phase") == "watching", timeout=90,
                        what="the canary watched")
        assert first.rollout()["new_running"] == 1 and first.rollout()["old_running"] == 2
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)

        second = MasterProcess(config, tmp_path / "second.log")
        wait_until_sync(lambda: second is not None and second.rollout().get("phase") == "done",
                        timeout=120, what="the rollout resumed and finished")
        done, done_at = second.rollout(), time.time()
        assert (done["new_running"], done["old_running"]) == (2, 0), done
        log = (tmp_path / "second.log").read_text()
        assert "resuming rollout" in log and log.count("adopted running instance") == 3

        # Everything sent after the rollout was done comes out of v2 alone.
        wait_until_sync(lambda: "v2" in out.versions_sent_after(done_at + 0.5), timeout=60,
                        what="v2 output after the rollout")
        assert out.versions_sent_after(done_at) == {"v2"}
        total = feeder.stop()
        feeder = None
        wait_until_sync(lambda: not accounted(total, out), timeout=90,
                        what="every message delivered")
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(60) == 0
    finally:
        if feeder is not None:
            feeder.stop()
        for m in (first, second):
            if m is not None and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
                try:
                    m.proc.wait(60)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
        out.close()
