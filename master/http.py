"""The master's HTTP face: ``/status`` (JSON) and ``/metrics`` (Prometheus text).

Metrics are read from the master's state when scraped, not updated per message:
a thousand heartbeats a second cost nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from master.master import Master

__all__ = ["MasterCollector", "StatusServer"]


class MasterCollector:
    """Prometheus collector over a running master."""

    def __init__(self, master: Master) -> None:
        self._master = master

    def collect(self) -> Iterator[Any]:
        m = self._master
        yield _counter("fogverse_master_control_messages", "Control messages accepted",
                       "kind", m.messages)
        yield _counter("fogverse_master_dropped_messages", "Control messages dropped",
                       "reason", m.malformed)
        yield _counter("fogverse_master_refused_requests", "Auto-scale requests refused",
                       "reason", m.refused)
        if m.deployer is not None:
            yield _counter("fogverse_master_scale_actions", "Scale actions started", "action",
                           m.deployer.actions)
        yield from _stage_gauges(m.status()["stages"])


def _counter(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


_GAUGES = {
    "live": ("fogverse_stage_live_instances", "Live instances of the stage"),
    "consumed_rate": ("fogverse_stage_consumed_rate", "Messages/s the stage consumes"),
    "produced_rate": ("fogverse_stage_produced_rate", "Messages/s the stage produces"),
}
_ASSESSED = {
    "ratio": ("fogverse_stage_output_input_ratio", "Output/input rate ratio"),
    "lag": ("fogverse_stage_lag", "Consumer group lag on the source topic"),
    "input_rate": ("fogverse_stage_input_rate", "Messages/s arriving in the source topic"),
}


def _stage_gauges(stages: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    for key, (name, doc) in _GAUGES.items():
        family = GaugeMetricFamily(name, doc, labels=["stage"])
        for st in stages:
            family.add_metric([st["stage"]], st[key])
        yield family
    for key, (name, doc) in _ASSESSED.items():
        family = GaugeMetricFamily(name, doc, labels=["stage"])
        for st in stages:
            value = (st["assessment"] or {}).get(key)
            if value is not None:
                family.add_metric([st["stage"]], value)
        yield family


class StatusServer:
    """aiohttp server for /status and /metrics; ``port=0`` picks a free port."""

    def __init__(self, master: Master, host: str = "127.0.0.1", port: int = 0) -> None:
        self._master = master
        self._host = host
        self._port = port
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(MasterCollector(master))
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        if self._runner is not None and self._runner.addresses:
            return int(self._runner.addresses[0][1])
        return self._port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        await self._site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def _status(self, request: web.Request) -> web.Response:
        body = json.dumps(self._master.status(), indent=2, sort_keys=True)
        return web.Response(text=body, content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        payload = generate_latest(self._registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})
