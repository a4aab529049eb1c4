"""The AGENT provider's book against what nodes report: adoption, strays, what went missing.

The fleet here is a recording stand-in at the provider's plugin boundary; the
real fleet and agents are exercised in tests/master/test_fleet_instances.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from deploy_scripts.agent import REPORT_SLACK_S, AgentProvider
from deploy_scripts.config import ServiceSpec
from fogverse.wire.nodes import InstanceEvent, InstanceStart, InstanceStop


class RecordingFleet:
    def __init__(self) -> None:
        self.orders: list[InstanceStart | InstanceStop] = []

    def place_instance(self, service: str, avoid: tuple[str, ...]) -> str | None:
        return None

    def node_score(self, node_id: str) -> float | None:
        return None

    def send_instance_order(self, order: InstanceStart | InstanceStop) -> None:
        self.orders.append(order)

    def add_instance_listener(self, listener: Callable[[InstanceEvent], None]) -> None:
        pass


def provider() -> tuple[AgentProvider, RecordingFleet]:
    fleet = RecordingFleet()
    spec = ServiceSpec("detect", provider="AGENT", module="app.detect")
    return AgentProvider({"detect": spec}, fleet), fleet


def test_a_restarted_master_adopts_what_its_state_records() -> None:
    agents, _ = provider()
    result = agents.adopt("detect-1", {"service": "detect", "node": "phone"})
    assert result is not None and result.instance_id == "detect-1"
    assert agents.instances_on("phone") == ["detect-1"]
    assert agents.adopt("x-1", {"service": "gone", "node": "phone"}) is None  # not declared


def test_reports_name_strays_and_what_went_missing() -> None:
    agents, fleet = provider()
    agents.adopt("detect-1", {"service": "detect", "node": "phone"})
    now = time.time()
    # A report from before the adoption tells nothing about it.
    assert agents.reconcile("phone", ("forged",), now - 60) == (["forged"], [])
    assert agents.reconcile("phone", ("detect-1",), now + 2 * REPORT_SLACK_S) == ([], [])
    assert agents.reconcile("phone", (), now + 2 * REPORT_SLACK_S) == ([], ["detect-1"])
    assert agents.reconcile("desktop", ("detect-1",), now) == (["detect-1"], [])
    agents.stop_stray("desktop", "detect-1")
    assert fleet.orders == [InstanceStop("desktop", "detect-1", 10.0)]
