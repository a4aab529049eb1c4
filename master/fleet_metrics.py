"""Prometheus metrics for the master's fleet: each node's score, power, heat and load,
and the task queue by state. Read from the fleet when scraped, never per message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from master.fleet import FleetService

__all__ = ["FleetCollector"]

_NODE_GAUGES = (
    ("fogverse_node_score", "The scheduler's score of the node (higher takes work first)",
     "score"),
    ("fogverse_node_battery_ratio", "Battery charge the node reported (0-1)",
     "battery_percent"),
    ("fogverse_node_cpu_utilization_ratio", "CPU utilisation the node reported (0-1)",
     "cpu_percent"),
    ("fogverse_node_running_tasks", "Tasks the node says it runs", "running_tasks"),
)
_PERCENT = frozenset({"battery_percent", "cpu_percent"})
"""Reported in percent; Prometheus wants ratios (0-1)."""


class FleetCollector:
    def __init__(self, fleet: FleetService) -> None:
        self._fleet = fleet

    def collect(self) -> Iterator[Any]:
        status = self._fleet.status()
        nodes = status["nodes"]
        for name, doc, key in _NODE_GAUGES:
            family = GaugeMetricFamily(name, doc, labels=["node"])
            for node in nodes:
                if node[key] is not None:
                    scale = 100.0 if key in _PERCENT else 1.0
                    family.add_metric([node["node_id"]], float(node[key]) / scale)
            yield family
        yield _flags("fogverse_node_charging", "1 while the node charges",
                     [(n["node_id"], n["charging"]) for n in nodes])
        thermal = GaugeMetricFamily("fogverse_node_thermal_state",
                                    "1 for the node's current thermal state",
                                    labels=["node", "state"])
        for node in nodes:
            thermal.add_metric([node["node_id"], node["thermal_state"]], 1.0)
        yield thermal
        instances = GaugeMetricFamily("fogverse_node_running_instances",
                                      "Stage instances the node says it runs", labels=["node"])
        for node in nodes:
            instances.add_metric([node["node_id"]], float(len(node["running_instances"])))
        yield instances
        tasks = GaugeMetricFamily("fogverse_tasks", "Tasks the master knows, by state",
                                  labels=["state"])
        for state, count in sorted(status["tasks"].items()):
            tasks.add_metric([state], float(count))
        yield tasks
        lost = CounterMetricFamily("fogverse_nodes_lost", "Nodes marked lost (missed reports)")
        lost.add_metric([], float(status["nodes_lost"]))
        yield lost


def _flags(name: str, doc: str, values: list[tuple[str, bool | None]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["node"])
    for node_id, value in values:
        if value is not None:
            family.add_metric([node_id], 1.0 if value else 0.0)
    return family
