"""The master's HTTP face: ``/status`` (JSON), ``/metrics`` (Prometheus text) and the
live dashboard (:mod:`master.dashboard`, its routes kept there).

Metrics are read from the master's state when scraped, not updated per message:
a thousand heartbeats a second cost nothing here.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from fogverse.errors import PortInUseError
from master.dashboard import DASHBOARD_PATH, Dashboard
from master.fleet_metrics import FleetCollector
from master.status import StageStatus, to_json
from master.status_views import NodeStatus

if TYPE_CHECKING:
    from master.master import Master

__all__ = ["MasterCollector", "StatusServer"]


class MasterCollector:
    """Prometheus collector over a running master."""

    def __init__(self, master: Master) -> None:
        self._master = master

    def collect(self) -> Iterator[Any]:
        status = self._master.status()
        summary = status.master
        yield _counter("fogverse_master_control_messages", "Control messages accepted",
                       "kind", summary.messages)
        yield _counter("fogverse_master_dropped_messages", "Control messages dropped",
                       "reason", summary.malformed)
        yield _counter("fogverse_master_refused_requests", "Auto-scale requests refused",
                       "reason", summary.refused)
        deployer = self._master.deployer
        if deployer is not None:
            yield _counter("fogverse_master_scale_actions", "Scale actions started", "action",
                           deployer.counts)
            yield _decisions(deployer.reasons)
        yield from _stage_gauges(status.stages)
        yield from _scheduler_gauges(self._master.scheduler.metrics())
        yield from _node_gauges(status.nodes)


def _counter(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _decisions(reasons: Mapping[tuple[str, str, str], int]) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "fogverse_master_scaling_decisions",
        "Auto-deployer decisions by stage, action and reason code (a hold counts when its "
        "reason changes)", labels=["stage", "action", "reason"])
    for labels, value in sorted(reasons.items()):
        family.add_metric(list(labels), value)
    return family


_GAUGES: list[tuple[str, str, Callable[[StageStatus], float | None]]] = [
    ("fogverse_stage_live_instances", "Live instances of the stage", lambda s: s.live),
    ("fogverse_stage_consumed_messages_per_second", "Messages/s the stage consumes",
     lambda s: s.consumed_rate),
    ("fogverse_stage_produced_messages_per_second", "Messages/s the stage produces",
     lambda s: s.produced_rate),
    ("fogverse_stage_output_input_ratio", "Output/input rate ratio",
     lambda s: s.assessment.ratio if s.assessment else None),
    ("fogverse_stage_lag_messages", "Consumer group lag on the source topic",
     lambda s: s.assessment.lag if s.assessment else None),
    ("fogverse_stage_input_messages_per_second", "Messages/s arriving in the source topic",
     lambda s: s.assessment.input_rate if s.assessment else None),
]


def _stage_gauges(stages: list[StageStatus]) -> Iterator[GaugeMetricFamily]:
    for name, doc, read in _GAUGES:
        family = GaugeMetricFamily(name, doc, labels=["stage"])
        for st in stages:
            value = read(st)
            if value is not None:
                family.add_metric([st.stage], value)
        yield family


def _scheduler_gauges(metrics: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    scores = GaugeMetricFamily("fogverse_scheduler_node_score",
                               "Compute score of each node (0-1), reservations counted",
                               labels=["node"])
    for node, score in sorted(metrics["node_scores"].items()):
        scores.add_metric([node], score)
    yield scores
    tasks = GaugeMetricFamily("fogverse_scheduler_tasks", "Scheduler tasks by type and state",
                              labels=["type", "state"])
    for (kind, state), count in sorted(metrics["task_counts"].items()):
        tasks.add_metric([kind, state], count)
    yield tasks


def _node_gauges(nodes: list[NodeStatus]) -> Iterator[GaugeMetricFamily]:
    """The master's own machine (the fleet's collector covers the agents' nodes)."""
    mine = [n for n in nodes if n.source == "master"]
    battery = GaugeMetricFamily("fogverse_scheduler_node_battery_ratio",
                                "Battery charge of the node (0-1), if it runs on one",
                                labels=["node"])
    instances = GaugeMetricFamily("fogverse_scheduler_node_instances",
                                  "Stage instances heartbeating from the node", labels=["node"])
    for node in mine:
        if node.battery_percent is not None:
            battery.add_metric([node.node_id], node.battery_percent / 100)
        instances.add_metric([node.node_id], len(node.instances))
    yield battery
    yield instances


class StatusServer:
    """aiohttp server for /status, /metrics and the dashboard; ``port=0`` picks a free port."""

    def __init__(self, master: Master, host: str = "127.0.0.1", port: int = 0) -> None:
        self._master = master
        self._host = host
        self._port = port
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(MasterCollector(master))
        if master.fleet is not None:
            self._registry.register(FleetCollector(master.fleet.service))
        self.dashboard = Dashboard(master)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        if self._runner is not None and self._runner.addresses:
            return int(self._runner.addresses[0][1])
        return self._port

    @property
    def dashboard_url(self) -> str:
        """The live dashboard's address (the port is known once started)."""
        return f"http://{self._host}:{self.port}{DASHBOARD_PATH}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        self.dashboard.install(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await self._site.start()
        except OSError as exc:
            await self.stop()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError("http_port", self._port, self._host) from None
            raise

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def _status(self, request: web.Request) -> web.Response:
        body = json.dumps(to_json(self._master.status()), indent=2, sort_keys=True)
        return web.Response(text=body, content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        payload = generate_latest(self._registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})
