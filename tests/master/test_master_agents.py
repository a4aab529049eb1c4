"""The whole loop with node agents: a Master, two real agents, an AGENT stage under load.

The stage's instances land on the best node (a charging phone beats a desktop on
mains), and move to the desktop when the phone heats up, without losing a message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from master_helpers import FeederThread, IdSink

from fogverse.admin import KafkaAdmin
from master import Master, master_settings
from tests.agent.agent_procs import start_agent, stop_agent
from tests.polling import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CAPACITY = 100  # messages/s one slow_stage instance handles
LOAD = 150      # needs two instances


def settings_for(servers: str, names: dict[str, str]) -> Any:
    control, source, target, group = (names[k] for k in ("control", "in", "out", "group"))
    return master_settings({
        "consumer_topic": control, "consumer_servers": servers,
        "consumer_group_id": f"{control}-master", "http_port": 0,
        "included_worker": ["AUTO_DEPLOYER", "STATISTIC_WORKER", "INPUT_OUTPUT_WORKER"],
        "input_output_worker_config": {"scale_in_hold": 600},  # this test is about placement
        "fleet_config": {"master_id": names["master"], "nodes_topic": names["nodes"],
                         "orders_topic": names["orders"], "tasks_topic": names["tasks"],
                         "status_topic": names["status"]},
        "services": {"slow": {
            "provider": "AGENT", "module": "examples.autoscale.slow_stage", "cwd": str(ROOT),
            "min_instance": 1, "max_instance": 2, "source_topic": source,
            "target_topic": target, "group_id": group,
            "env": {"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": group,
                    "SLOW_SECONDS": str(1 / CAPACITY), "CONTROL_TOPIC": control},
        }},
    })


async def test_agent_stage_scales_onto_the_best_node_and_leaves_it_when_hot(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    names = {k: unique(k) for k in ("control", "in", "out", "group", "master", "nodes",
                                    "orders", "tasks", "status")}
    admin = KafkaAdmin(kafka_bootstrap)
    await admin.ensure_topic(names["in"], 1)
    await admin.ensure_topic(names["out"], 1)
    master = Master(settings_for(kafka_bootstrap, names))
    assert master.fleet is not None and master.fleet.provider is not None
    provider = master.fleet.provider
    phone_profile = tmp_path / "phone.env"
    phone_profile.write_text("BATTERY=80\nCHARGING=true\nTHERMAL=normal\nCPU_PERCENT=10\n")
    agents = [
        start_agent(kafka_bootstrap, "phone", names["nodes"], names["orders"], tmp_path,
                    master=names["master"], handlers=None, profile_file=phone_profile),
        start_agent(kafka_bootstrap, "desktop", names["nodes"], names["orders"], tmp_path,
                    master=names["master"], handlers=None,
                    profile={"THERMAL": "normal", "CPU_PERCENT": "10"}),
    ]
    stage = (names["in"], names["out"])
    sink = IdSink(kafka_bootstrap, names["out"], unique("sink"))
    feeder: FeederThread | None = None
    try:
        await master.start()
        await wait_until(lambda: master.registry.live_count(stage) == 1, timeout=90,
                         what="min_instance started on an agent")
        assert len(provider.instances_on("phone")) == 1  # the charging phone scores best

        feeder = FeederThread(LOAD, producer_topic=names["in"],
                              consumer_servers=kafka_bootstrap, control_topic=names["control"])
        await wait_until(lambda: master.registry.live_count(stage) == 2, timeout=120,
                         what="scale-out to 2 under load")
        assert len(provider.instances_on("phone")) == 2  # still the best node

        phone_profile.write_text("BATTERY=80\nCHARGING=true\nTHERMAL=60\nCPU_PERCENT=10\n")
        await wait_until(lambda: len(provider.instances_on("desktop")) == 2
                         and provider.instances_on("phone") == [], timeout=120,
                         what="both instances moved off the hot phone")
        total = feeder.stop()
        feeder = None
        await wait_until(lambda: not sink.missing(total), timeout=120,
                         what="every message delivered")
        status = master.status().workers["fleet"]
        phone = next(n for n in status["nodes"] if n["node_id"] == "phone")  # type: ignore[index]
        assert phone["thermal_state"] == "hot" and phone["blocker"] == "thermal"
    finally:
        if feeder is not None:
            feeder.stop()
        await master.close()
        for proc in agents:
            stop_agent(proc)
        sink.close()
        admin.close()
