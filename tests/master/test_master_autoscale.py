"""The whole loop, for real: a slow stage under load scales out and back in.

Real broker, real master, real LOCAL child processes, each a stage built on the
runtime (examples/autoscale/slow_stage.py). Nothing is timed: the test waits for
outcomes with deadlines and asserts them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from master_helpers import FeederThread, IdSink

from fogverse.admin import KafkaAdmin
from master import Master, master_settings
from tests.polling import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CAPACITY = 100  # messages/s one slow_stage instance handles (SLOW_SECONDS = 0.01)
LOAD = 250      # needs three instances: the ratio and the lag both say so


def settings_for(servers: str, control: str, source: str, target: str, group: str) -> Any:
    return master_settings({
        "consumer_topic": control, "consumer_servers": servers,
        "consumer_group_id": f"{control}-master", "http_port": 0,
        "included_worker": ["AUTO_DEPLOYER", "STATISTIC_WORKER", "INPUT_OUTPUT_WORKER"],
        # Defaults everywhere but the scale-in hold, to keep the test short.
        "input_output_worker_config": {"scale_in_hold": 4},
        "services": {"slow": {
            "provider": "LOCAL", "module": "examples.autoscale.slow_stage", "cwd": str(ROOT),
            "min_instance": 1, "max_instance": 3, "source_topic": source,
            "target_topic": target, "group_id": group,
            "env": {"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": group,
                    "SLOW_SECONDS": str(1 / CAPACITY), "CONTROL_TOPIC": control},
        }},
    })


async def test_scales_out_under_load_and_back_in_without_losing_a_message(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    control, source, target, group = (unique(p) for p in ("control", "in", "out", "slow"))
    admin = KafkaAdmin(kafka_bootstrap)
    await admin.ensure_topic(source, 1)
    await admin.ensure_topic(target, 1)
    master = Master(settings_for(kafka_bootstrap, control, source, target, group))
    stage = (source, target)
    sink = IdSink(kafka_bootstrap, target, unique("sink"))
    feeder: FeederThread | None = None
    try:
        await master.start()
        await wait_until(lambda: master.registry.live_count(stage) == 1, timeout=60,
                         what="min_instance started")

        # Steady load (paced, zero variance) well above one instance's capacity.
        feeder = FeederThread(LOAD, producer_topic=source, consumer_servers=kafka_bootstrap,
                              control_topic=control)
        alone: list[float] = []
        together: list[float] = []

        def three_live() -> bool:
            rates = master.registry.stage_rates(stage)
            (alone if rates.live == 1 else together if rates.live == 3 else []).append(
                rates.produced)
            return rates.live == 3 and len(together) >= 15

        await wait_until(three_live, timeout=90, interval=0.2, what="scale-out to max_instance 3")
        partitions = await admin.partition_count(source)
        assert partitions is not None and partitions >= 3
        # Three instances move more than one did (the per-second peak of each set-up).
        assert max(together) > 1.5 * max(alone)

        total = feeder.stop()
        feeder = None
        await wait_until(lambda: not sink.missing(total), timeout=90,
                         what="every message delivered")
        await wait_until(lambda: master.registry.live_count(stage) == 1, timeout=90,
                         what="scale-in to min_instance 1")

        assert master.deployer is not None
        decisions = [(d.action, d.code) for d in master.deployer.decisions]
        assert decisions.count(("scale_out", "needs_more")) == 2
        assert decisions.count(("scale_in", "too_many")) == 2
        assert all(d.reason for d in master.deployer.decisions)
        assert sink.missing(total) == []
    finally:
        if feeder is not None:
            feeder.stop()
        local = master.deploy_scripts.get_deploy_functions("LOCAL")
        await master.close()
        sink.close()
        admin.close()
    assert local.running() == []  # type: ignore[attr-defined]  # no orphans
