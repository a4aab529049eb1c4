"""Periodic heartbeats for a running stage, sent beside its work.

The reporter runs in a daemon thread rather than on the stage's event loop: a
synchronous ``process()`` that holds the loop for seconds (model inference, a
slow batch) must not look like a dead instance to the master, which would then
start replacements. It reads cumulative totals from a callable, sends the
difference since the previous beat, and never waits for the broker.

A stage built on the runtime starts one with :func:`start_heartbeats`::

    task = start_heartbeats(stage)   # an asyncio.Task, or None when disabled
    ...
    task.cancel(); await task        # last beat, "instance_stopping", bounded flush
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fogverse.config import StageConfig, connection_settings
from fogverse.control import MIN_HEARTBEAT_INTERVAL
from fogverse.observer import InstanceInfo, Observer, auto_scale_request
from fogverse.stats import StageStats

__all__ = [
    "DEFAULT_REQUEST_EVERY",
    "HeartbeatReporter",
    "StageLike",
    "Totals",
    "reporter_for_stage",
    "start_heartbeats",
]

DEFAULT_REQUEST_EVERY = 15.0
"""Seconds between repeats of the auto-scale request, so a restarted master relearns it."""

log = logging.getLogger("fogverse.heartbeat")


@dataclass(frozen=True)
class Totals:
    """Cumulative counts since the stage started; the reporter sends differences."""

    consumed: int = 0
    produced: int = 0
    processing_seconds: float | None = None
    lag: int | None = None
    """Current lag (a level, not a total), when the stage knows it."""
    dead_lettered: int = 0


class HeartbeatReporter:
    """Sends a heartbeat every ``interval`` seconds from a background thread.

    With ``deploy_config`` (FogVerse's DeployConfig mapping) it also sends the
    stage's auto-scale request on start and every ``request_every`` seconds.
    """

    def __init__(
        self,
        observer: Observer,
        totals: Callable[[], Totals],
        *,
        interval: float = 1.0,
        deploy_config: Mapping[str, Any] | None = None,
        request_every: float = DEFAULT_REQUEST_EVERY,
        owns_observer: bool = True,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"heartbeat interval must be positive, got {interval}")
        self.observer = observer
        self._totals = totals
        self.interval = interval
        self._deploy_config = dict(deploy_config) if deploy_config else None
        self._request_every = request_every
        self._owns_observer = owns_observer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat_lock = threading.Lock()
        self._last = Totals(0, 0, 0.0)
        self._last_at = time.monotonic()
        self._last_request_at = float("-inf")
        self.beats = 0

    def start(self) -> None:
        """Send the auto-scale request (if any) and begin beating. Returns at once."""
        if self._thread is not None:
            return
        # _last stays at zero: totals count from the stage's start, and the first
        # beat should carry everything done before the reporter started.
        self._last_at = time.monotonic()
        self._maybe_request(self._last_at)
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{self.observer.info.instance_id}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a heartbeat must never take the stage down
                log.exception("heartbeat failed")

    def beat(self) -> None:
        """Send one heartbeat now with the counts since the previous one."""
        with self._beat_lock:
            now = time.monotonic()
            totals = self._read()
            last = self._last
            processing = None
            if totals.processing_seconds is not None and last.processing_seconds is not None:
                processing = max(0.0, totals.processing_seconds - last.processing_seconds)
            self.observer.heartbeat(
                consumed=max(0, totals.consumed - last.consumed),
                produced=max(0, totals.produced - last.produced),
                interval=max(now - self._last_at, MIN_HEARTBEAT_INTERVAL),
                processing_seconds=processing,
                lag=totals.lag,
                dead_lettered=max(0, totals.dead_lettered - last.dead_lettered),
            )
            self._last, self._last_at = totals, now
            self.beats += 1
            self._maybe_request(now)

    def _read(self) -> Totals:
        totals = self._totals()
        return totals if totals.processing_seconds is not None else Totals(
            totals.consumed, totals.produced, None, totals.lag, totals.dead_lettered
        )

    def _maybe_request(self, now: float) -> None:
        config = self._deploy_config
        info = self.observer.info
        if config is None or info.source_topic is None:
            return
        if now - self._last_request_at < self._request_every:
            return
        self._last_request_at = now
        self.observer.send(auto_scale_request(info, info.source_topic, info.target_topic, config))

    def close(self, reason: str = "stopped", timeout: float = 5.0) -> None:
        """Stop beating, send a last beat and a goodbye, deliver them (blocking, bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with contextlib.suppress(Exception):
            self.beat()
        self.observer.send_instance_stopping(reason)
        if self._owns_observer:
            self.observer.close(timeout)
        else:
            self.observer.flush(timeout)

    async def stop(self, reason: str = "stopped", timeout: float = 5.0) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close, reason, timeout)

    def run_in_background(self) -> asyncio.Task[None]:
        """Start, and return a task that closes the reporter when cancelled."""
        self.start()
        return asyncio.get_running_loop().create_task(self._until_cancelled())

    async def _until_cancelled(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            # Shielded so the goodbye is sent even though we were cancelled.
            await asyncio.shield(self.stop())


class StageLike(Protocol):
    """What the reporter reads from a runtime stage."""

    @property
    def config(self) -> StageConfig: ...

    @property
    def name(self) -> str: ...

    stats: StageStats


def reporter_for_stage(
    stage: StageLike, deploy_config: Mapping[str, Any] | None = None
) -> HeartbeatReporter:
    """A reporter wired to a runtime stage's settings and counters.

    ``deploy_config`` defaults to the stage's ``deploy_config`` setting, or a
    ``deploy_config`` attribute (FogVerse style).
    """
    config = stage.config
    source = config.consumer_topic[0] if config.consumer_topic else None
    info = InstanceInfo.from_env(
        service_name=stage.name,
        source_topic=source,
        target_topic=config.producer_topic,
        # The runtime's own default group id: the stage's class name.
        group_id=(config.group_id or stage.name) if source else None,
    )
    observer = Observer(
        config.control_topic, config.effective_producer_servers,
        info=info, extra=connection_settings(config.kafka_extra), client=config.client,
    )
    stats = stage.stats
    if deploy_config is None:
        deploy_config = config.deploy_config or getattr(stage, "deploy_config", None)

    # With concurrency N, N messages' process times overlap: reported is the
    # share of the N places in use, so a saturated instance reads 1 busy and
    # the master's scale-in rule (utilisation of those that remain) holds.
    places = max(1, config.concurrency)

    def totals() -> Totals:
        process = stats.step_seconds.get("process")
        # The lag is known only while the stage measures it (with metrics on).
        return Totals(stats.consumed, stats.produced,
                      None if process is None else process / places, stats.lag,
                      dead_lettered=stats.dead_lettered)

    return HeartbeatReporter(
        observer, totals, interval=config.heartbeat_interval, deploy_config=deploy_config
    )


def start_heartbeats(stage: StageLike) -> asyncio.Task[None] | None:
    """Start heartbeats for ``stage`` unless its settings turn them off.

    Fits the runtime's background-starter slot: the returned task is cancelled
    when the stage closes, which sends the last beat and the goodbye.
    """
    if not stage.config.heartbeat:
        return None
    return reporter_for_stage(stage).run_in_background()

