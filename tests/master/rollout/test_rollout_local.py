"""Rollouts for real: LOCAL stages on the real broker under a steady feed.

One pipeline, five rollouts in a row, every message counted: a canary, a rolling
and a blue-green rollout of good versions each switch the output to the new
version; a version that crashes at start and one that dead-letters every
message are each rolled back on their own while the old version keeps serving.
Nothing is lost: every input is in the output or, for the dead-lettering
version, in the dead-letter topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rollout_helpers import VersionSink, accounted, dead_letter_topic

from fogverse.admin import KafkaAdmin
from master import Master, master_settings
from master.rollout import Phase
from tests.master.master_helpers import FeederThread
from tests.polling import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
RATE = 100


def settings_for(servers: str, control: str, source: str, target: str, group: str,
                 log_dir: Path) -> Any:
    return master_settings({
        "consumer_topic": control, "consumer_servers": servers,
        "consumer_group_id": f"{control}-master", "http_port": None, "state_topic": "",
        "included_worker": ["AUTO_DEPLOYER"], "log_dir": str(log_dir),
        "auto_deployer_config": {"deploy_delay": 1, "after_heartbeat_delay": 1},
        "rollout_config": {"health_window": 2, "canary_window": 2, "batch_pause": 0.5,
                           "min_sample": 10},
        "services": {"pass": {
            "provider": "LOCAL", "module": "examples.rollout.stage", "cwd": str(ROOT),
            "min_instance": 2, "max_instance": 2, "source_topic": source,
            "target_topic": target, "group_id": group, "version": "v1",
            "env": {"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": group,
                    "CONTROL_TOPIC": control},
            "versions": {"v2": {}, "v3": {}, "v4": {},
                         "crash": {"env": {"STAGE_MODE": "crash"}},
                         "dlq": {"env": {"STAGE_MODE": "dead-letter"}}},
        }},
    })


async def test_rollouts_switch_the_output_and_bad_versions_roll_back_losing_nothing(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    control, source, target, group = (unique(p) for p in ("control", "in", "out", "pass"))
    admin = KafkaAdmin(kafka_bootstrap)
    for topic in (source, target, dead_letter_topic(source)):
        await admin.ensure_topic(topic, 1)
    master = Master(settings_for(kafka_bootstrap, control, source, target, group,
                                 tmp_path / "logs"))
    out = VersionSink(kafka_bootstrap, target, unique("sink"))
    dead = VersionSink(kafka_bootstrap, dead_letter_topic(source), unique("dlq"))
    feeder: FeederThread | None = None
    assert master.rollouts is not None
    rollouts = master.rollouts.rollouts
    try:
        await master.start()
        await wait_until(lambda: master.registry.live_count((source, target)) == 2,
                         timeout=90, what="both v1 instances")
        feeder = FeederThread(RATE, producer_topic=source, consumer_servers=kafka_bootstrap,
                              control_topic=control)

        async def roll(version: str, strategy: str, outcome: Phase) -> float:
            master.rollout("pass", version, strategy)
            await wait_until(lambda: not rollouts["pass"].active, timeout=120,
                             what=f"the {strategy} rollout to {version} to settle")
            assert rollouts["pass"].phase is outcome, rollouts["pass"].history
            return time.time()

        async def serves(version: str, since: float) -> None:
            # Everything sent after the rollout settled comes out of ``version`` alone.
            await wait_until(lambda: version in out.versions_sent_after(since + 0.5),
                             timeout=60, what=f"output of {version}")
            assert out.versions_sent_after(since) == {version}

        await serves("v2", await roll("v2", "canary", Phase.DONE))
        await serves("v2", await roll("crash", "rolling", Phase.ROLLED_BACK))
        assert "exited before its first heartbeat" in rollouts["pass"].reason
        await serves("v2", await roll("dlq", "blue-green", Phase.ROLLED_BACK))
        assert "dead-lettered" in rollouts["pass"].reason
        assert dead.ids, "the bad version's inputs are in the dead-letter topic"
        await serves("v3", await roll("v3", "rolling", Phase.DONE))
        await serves("v4", await roll("v4", "blue-green", Phase.DONE))

        total = feeder.stop()
        feeder = None
        await wait_until(lambda: not accounted(total, out, dead), timeout=90,
                         what="every input in the output or the dead-letter topic")
        assert master.deployer is not None
        assert sorted(d.version for d in master.deployer.instances((source, target))) == \
            ["v4", "v4"]
        status = master.status().workers["rollout"]
        assert status["pass"].phase == "done" and status["pass"].new == "v4"  # type: ignore[index]
    finally:
        if feeder is not None:
            feeder.stop()
        local = master.deploy_scripts.get_deploy_functions("LOCAL")
        await master.close()
        out.close()
        dead.close()
        admin.close()
    assert local.running() == []  # type: ignore[attr-defined]
