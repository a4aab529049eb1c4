"""The demo's pieces and their settings: names, timing, the Master's config.

Every run has its own topics and groups (a random run id), so it can share a
broker with anything else, another demo included.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.demo.analysis import ENV_ANALYSIS_SECONDS

__all__ = ["FULL", "SHORT", "Names", "Timing", "http_port", "master_config"]

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "analysis"


@dataclass(frozen=True)
class Timing:
    """How long each step lasts, and the load it puts on the slow stage."""

    warm_s: float
    """Seconds at the base rate before the load step."""
    load_hold_s: float
    """The load step ends this long after the stage reached ``max_instance``..."""
    load_cap_s: float
    """...or after this many seconds in any case."""
    calm_hold_s: float
    """The calm ends this long after the stage is back at ``min_instance``..."""
    calm_cap_s: float
    """...or after this many seconds in any case."""
    drain_cap_s: float
    analysis_s: float = 0.04
    """Seconds per frame in the slow stage: 25 frames/s per instance."""
    base_rate: float = 10.0
    peak_rate: float = 60.0
    """Frames/s of the load step: more than two instances handle, less than three."""
    min_instance: int = 1
    max_instance: int = 3
    scale_in_hold: float = 8.0
    deploy_delay: float = 3.0

    @property
    def expected_s(self) -> float:
        """A guess at the length of a run, for the progress bar."""
        return 15 + self.warm_s + 25 + self.load_hold_s + 20 + self.calm_hold_s + 5


FULL = Timing(warm_s=12, load_hold_s=20, load_cap_s=60, calm_hold_s=6, calm_cap_s=45,
              drain_cap_s=30)
SHORT = Timing(warm_s=3, load_hold_s=3, load_cap_s=40, calm_hold_s=1, calm_cap_s=40,
               drain_cap_s=30, scale_in_hold=4.0, deploy_delay=2.0)


@dataclass(frozen=True)
class Names:
    run: str
    control: str
    state: str
    frames: str
    results: str
    group: str
    master_id: str
    nodes: str
    orders: str
    tasks: str
    status: str

    @classmethod
    def fresh(cls) -> Names:
        run = uuid.uuid4().hex[:6]
        internal = f"fogverse-demo-{run}"
        return cls(run=run, control=f"{internal}-control", state=f"{internal}-state",
                   frames=f"demo-{run}-frames", results=f"demo-{run}-results",
                   group=f"demo-{run}-analysis", master_id=f"demo-{run}",
                   nodes=f"{internal}-nodes", orders=f"{internal}-orders",
                   tasks=f"{internal}-tasks", status=f"{internal}-task-status")


def master_config(names: Names, bootstrap: str, timing: Timing, port: int) -> dict[str, Any]:
    """A FogVerse-style master config: one AGENT service, the slow analysis stage."""
    return {
        "consumer_topic": names.control, "consumer_servers": bootstrap,
        "consumer_group_id": f"{names.master_id}-master", "state_topic": names.state,
        "http_port": port,
        "included_worker": ["AUTO_DEPLOYER", "STATISTIC_WORKER", "INPUT_OUTPUT_WORKER"],
        "auto_deployer_config": {"deploy_delay": timing.deploy_delay,
                                 "after_heartbeat_delay": 2},
        # At 10 frames/s a rebalance's pause alone grows the lag by a few per second:
        # not a reason to scale out again.
        "input_output_worker_config": {"scale_in_hold": timing.scale_in_hold,
                                       "lag_growth_min": 5.0},
        "fleet_config": {"master_id": names.master_id, "nodes_topic": names.nodes,
                         "orders_topic": names.orders, "tasks_topic": names.tasks,
                         "status_topic": names.status},
        "services": {SERVICE: {
            "provider": "AGENT", "module": "examples.demo.analysis", "cwd": str(ROOT),
            "min_instance": timing.min_instance, "max_instance": timing.max_instance,
            "source_topic": names.frames, "target_topic": names.results,
            "group_id": names.group,
            "env": {"CONSUMER_TOPIC": names.frames, "PRODUCER_TOPIC": names.results,
                    "GROUP_ID": names.group, ENV_ANALYSIS_SECONDS: str(timing.analysis_s),
                    "CONTROL_TOPIC": names.control},
        }},
    }


def http_port(preferred: int) -> int:
    """``preferred`` when free on 127.0.0.1, else 0 (any free port)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred
