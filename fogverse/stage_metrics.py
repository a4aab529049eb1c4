"""Prometheus metrics of one stage instance, served on its ``metrics_port``.

Off by default. On, the stage's message path counts each step's time into
:class:`~fogverse.stats.StepHistograms` (a bisect and an increment per step);
everything else is read from the counters the stage keeps anyway, when
Prometheus scrapes, never per message. The consumer's lag is measured here
every :data:`LAG_EVERY` seconds on the stage's own loop (the client is not
shared with the scrape thread).

Metrics (each with a ``stage`` label, the stage's name):

- ``fogverse_stage_messages_in_total``, ``fogverse_stage_messages_out_total``
  (handed to Kafka), ``fogverse_stage_messages_acked_total`` (acknowledged);
- ``fogverse_stage_dead_letters_total``, ``fogverse_stage_skipped_messages_total``,
  ``fogverse_stage_errors_total``;
- ``fogverse_stage_step_duration_seconds{step}``: a histogram per step of the path
  (decode, process, encode, send);
- ``fogverse_stage_consumer_lag_messages``: unread messages in its partitions;
- ``fogverse_stage_start_time_seconds``: when the instance started (Unix time).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from fogverse.config import StageConfig, metrics_ports
from fogverse.errors import ConfigError, PortInUseError
from fogverse.stats import STEPS, StageStats, StepHistograms

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = ["LAG_EVERY", "MetricsStage", "StageCollector", "serve_metrics", "start_metrics"]

log = logging.getLogger("fogverse.metrics")

LAG_EVERY = 2.0
"""Seconds between two measurements of the consumer's lag."""

_COUNTERS: tuple[tuple[str, str, Callable[[StageStats], int]], ...] = (
    ("fogverse_stage_messages_in", "Messages the stage took in", lambda s: s.consumed),
    ("fogverse_stage_messages_out", "Messages the stage handed to Kafka", lambda s: s.produced),
    ("fogverse_stage_messages_acked", "Messages Kafka acknowledged", lambda s: s.acked),
    ("fogverse_stage_dead_letters", "Inputs sent to the dead-letter topic",
     lambda s: s.dead_lettered),
    ("fogverse_stage_skipped_messages", "Inputs skipped after an error", lambda s: s.skipped),
    ("fogverse_stage_errors", "Steps that raised", lambda s: s.errors),
)


class MetricsStage(Protocol):
    """What the metrics read from a runtime stage."""

    @property
    def config(self) -> StageConfig: ...

    @property
    def name(self) -> str: ...

    stats: StageStats
    served_metrics_port: int | None

    async def consumer_lag(self) -> int | None: ...


class StageCollector:
    """Reads a stage's counters when Prometheus scrapes."""

    def __init__(self, name: str, stats: StageStats, started_at: float) -> None:
        self._name = name
        self._stats = stats
        self._started_at = started_at

    def collect(self) -> Iterator[Any]:
        stats, labels = self._stats, [self._name]
        for metric, doc, read in _COUNTERS:
            family = CounterMetricFamily(metric, doc, labels=["stage"])
            family.add_metric(labels, read(stats))
            yield family
        if stats.step_histograms is not None:
            yield _step_histogram(self._name, stats.step_histograms, stats.step_seconds)
        lag = GaugeMetricFamily("fogverse_stage_consumer_lag_messages",
                                "Messages in the stage's assigned partitions not read yet",
                                labels=["stage"])
        if stats.lag is not None:
            lag.add_metric(labels, stats.lag)
        yield lag
        start = GaugeMetricFamily("fogverse_stage_start_time_seconds",
                                  "When the stage instance started (Unix time)", labels=["stage"])
        start.add_metric(labels, self._started_at)
        yield start


def _step_histogram(name: str, histograms: StepHistograms,
                    sums: dict[str, float]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("fogverse_stage_step_duration_seconds",
                                   "Time one message spent in each step of the stage's path",
                                   labels=["stage", "step"])
    bounds = [*(f"{b:g}" for b in histograms.bounds), "+Inf"]
    for index, step in enumerate(STEPS):
        running, buckets = 0, []
        for bound, count in zip(bounds, list(histograms.counts[index]), strict=True):
            running += count
            buckets.append((bound, running))
        family.add_metric([name, step], buckets, sums.get(step, 0.0))
    return family


def serve_metrics(registry: CollectorRegistry, ports: range,
                  host: str = "0.0.0.0") -> tuple[WSGIServer, int]:
    """Serve ``registry`` on the first free port of ``ports``; the server and its port."""
    for port in ports:
        try:
            server, _thread = start_http_server(port, host, registry)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        return server, int(server.server_port)
    setting = "metrics_port (FOGVERSE_METRICS_PORT)"
    if len(ports) == 1:
        raise PortInUseError(setting, ports[0], host)
    raise ConfigError(setting, f"{ports[0]}-{ports[-1]}", "every port in the range is in use",
                      hint="give a wider range, one port per instance on this host")


def start_metrics(stage: MetricsStage) -> asyncio.Task[None] | None:
    """Serve ``stage``'s metrics if its ``metrics_port`` says so (a background starter).

    The returned task measures the lag until cancelled, then stops the server.
    """
    ports = metrics_ports(stage.config)
    if ports is None:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StageCollector(stage.name, stage.stats, time.time()))
    server, port = serve_metrics(registry, ports)
    stage.served_metrics_port = port
    # From now on the path times each message's steps (it reads this per batch).
    stage.stats.step_histograms = StepHistograms()
    log.info("%s: metrics on http://%s:%d/metrics", stage.name, server.server_name, port)
    return asyncio.get_running_loop().create_task(_measure_lag(stage, server))


async def _measure_lag(stage: MetricsStage, server: WSGIServer) -> None:
    try:
        while True:
            with contextlib.suppress(Exception):  # a lag we cannot tell now stays unknown
                stage.stats.lag = await stage.consumer_lag()
            await asyncio.sleep(LAG_EVERY)
    finally:
        await asyncio.to_thread(_close, server)


def _close(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()
