from __future__ import annotations

from master.scheduling import Scheduler
from master.scheduling.capacity import Capacity
from master.status_views import node_statuses


def test_a_node_an_agent_reports_is_listed_once_as_the_agent_reports_it() -> None:
    # With a fleet the master's scheduler holds the agents' nodes too.
    scheduler = Scheduler()
    scheduler.register_node("master@box", Capacity(cpu_cores=4))
    scheduler.register_node("pi-1", Capacity(cpu_cores=4))
    agents = [{"node_id": "pi-1", "score": 0.5, "battery_percent": 80.0,
               "thermal_state": "normal", "running_instances": ["a"]}]
    nodes = node_statuses(scheduler, agents, [])
    assert [(n.node_id, n.source) for n in nodes] == [("master@box", "master"),
                                                      ("pi-1", "agent")]
    assert nodes[1].battery_percent == 80.0 and nodes[1].instances == ["a"]
