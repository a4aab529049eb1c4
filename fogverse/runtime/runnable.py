"""What every stage shares: settings, the producer, and the lifecycle.

The path each message takes is :class:`~fogverse.runtime.path.MessagePath`;
what happens when a step fails is :class:`~fogverse.runtime.policy.ErrorPolicy`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from fogverse.clients.base import Backend, BrokerAdmin, ProducerClient
from fogverse.clients.choice import backend_for
from fogverse.codec import Codec
from fogverse.config import (
    ENV_NAMES,
    SETTING_NAMES,
    StageConfig,
    check_setting_names,
    connection_settings,
    resolve_config,
)
from fogverse.constants import H_CREATED_AT
from fogverse.context import MessageContext
from fogverse.heartbeat import start_heartbeats
from fogverse.offsets import CommitTracker
from fogverse.runtime.flight import Delivery, InFlight
from fogverse.runtime.path import HOOK_NAMES, MessagePath
from fogverse.runtime.policy import StageError
from fogverse.stage_metrics import start_metrics
from fogverse.stats import STEPS, ProfilingCsv, StageStats
from fogverse.topics import TOPIC_FILE, apply_working_directory_file

__all__ = ["HOOK_NAMES", "Runnable", "StageError"]

log = logging.getLogger("fogverse.stage")


class Runnable(MessagePath):
    """The minimal stage. Subclass :class:`Producer` or :class:`Consumer` instead."""

    topic_file: str | None = TOPIC_FILE
    """FogVerse's ``topic.yaml``, applied from the working directory at start; None skips it."""
    _own_setting_names: tuple[str, ...] = ()
    """Settings a subclass takes besides StageConfig's (a misspelling is checked against both)."""
    served_metrics_port: int | None = None
    """The port the stage's Prometheus metrics are on, once it started with ``metrics_port``."""

    def __init__(
        self, config: StageConfig | None = None, *, codec: Codec | None = None,
        loop: asyncio.AbstractEventLoop | None = None, **settings: Any
    ) -> None:
        """``settings`` are StageConfig fields by name; ``codec`` replaces the class's codec.

        A misspelt setting fails here, naming the closest valid one.
        """
        check_setting_names(settings, self._own_setting_names)
        # ``loop`` is FogVerse's argument; the stage runs on whichever loop runs it.
        self._given_loop = loop
        self._base_config = config
        self._settings = settings
        self._config: StageConfig | None = None
        self.stats = StageStats()
        self.message = None
        self.producer: ProducerClient | None = None
        self._backend: Backend | None = None
        self._admin: BrokerAdmin | None = None
        self._tracker = CommitTracker()
        self._stopping = threading.Event()
        self._fatal: BaseException | None = None
        self._profile: ProfilingCsv | None = None
        self._hooks = {}
        self._background: list[asyncio.Task[None]] = []
        if codec is not None:
            self.codec = codec

    # -- settings -------------------------------------------------------------

    @property
    def config(self) -> StageConfig:
        """The resolved settings (resolved on first use, validated then)."""
        if self._config is None:
            self._config = self._resolve_config()
            self._publish_settings(self._config)
        return self._config

    def _resolve_config(self) -> StageConfig:
        explicit: dict[str, Any] = {}
        # FogVerse style: any setting given as an attribute of the instance or
        # class before start; constructor arguments beat it.
        for name in SETTING_NAMES:
            value = getattr(self, name, None)
            if value is not None and not callable(value):
                explicit[name] = value
        explicit.update(self._settings)
        config = resolve_config(explicit, base=self._base_config)
        self._check_roles(config)
        return config

    def _publish_settings(self, config: StageConfig) -> None:
        # FogVerse code reads self.producer_topic and friends; keep them true.
        for name in ENV_NAMES:
            setattr(self, name, getattr(config, name))

    def _check_roles(self, config: StageConfig) -> None:
        """Subclasses reject settings their role cannot run without."""

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        """FogVerse's ``self._loop`` (code calls ``self._loop.run_in_executor``)."""
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            if self._given_loop is None:
                raise
            return self._given_loop

    # -- the lifecycle ------------------------------------------------------------

    async def run(self) -> None:
        """Run until stopped (signal, :meth:`stop`, or a burst limit); then drain."""
        _ = self.config  # settings are validated before anything starts
        self._stopping.clear()
        self._prepare_path()
        self._install_signals()
        try:
            await self._start()
            await self._main_loop()
        finally:
            try:
                await self._close()
            finally:
                self._remove_signals()
        if self._fatal is not None:
            raise StageError(f"{self.name} stopped: {self._fatal}") from self._fatal

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _kafka(self) -> Backend:
        """The Kafka client backend the ``client`` setting chose."""
        if self._backend is None:
            self._backend = backend_for(self.config.client)
        return self._backend

    async def _start(self) -> None:
        config = self.config
        self._admin = await self._kafka().connect(
            config.consumer_servers, config.kafka_extra,
            config.connect_attempts, config.connect_backoff,
        )
        # Declared topics first, so they get their partitions and configs.
        await apply_working_directory_file(
            self.topic_file, connection_settings(config.kafka_extra)
        )
        await self._admin.ensure_topics(self._topics_to_create())
        if self._needs_producer():
            await self.start_producer()
        if config.profiling_csv:
            self._profile = ProfilingCsv(config.profiling_csv)
        for start in self._background_starters:
            task = start(self)
            if task is not None:
                self._background.append(task)

    _background_starters: tuple[Callable[[Runnable], asyncio.Task[None] | None], ...] = (
        start_metrics, start_heartbeats,
    )
    """What runs beside the main loop; each task is cancelled when the stage closes."""

    def _topics_to_create(self) -> list[str]:
        config = self.config
        topics = [*config.consumer_topic]
        if config.producer_topic:
            topics.append(config.producer_topic)
        return topics

    def _needs_producer(self) -> bool:
        return self.config.producer_topic is not None

    async def start_producer(self) -> None:
        """Create the Kafka producer. Override to add work around it (FogVerse hook)."""
        if self.producer is None:
            self.producer = await self._kafka().producer(self.config, self._client_id())

    def _client_id(self) -> str:
        return self.config.client_id or f"{self.name}-{id(self):x}"

    async def _main_loop(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self.close_producer()
        if self._profile is not None:
            self._profile.close()
            self._profile = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def close_producer(self) -> None:
        """Deliver everything still queued, then drop the producer."""
        if self.producer is None:
            return
        producer = self.producer
        remaining = await producer.flush(self.config.shutdown_timeout)
        self.stats.last_output_at = time.monotonic()
        if remaining:
            log.error("%s: %d messages were not delivered before shutdown", self.name, remaining)
        self.producer = None
        await producer.close()

    def _install_signals(self) -> None:
        self._signals: list[signal.Signals] = []
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
            self._signals.append(sig)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)

    async def consumer_lag(self) -> int | None:
        """Messages waiting in this instance's partitions; None when it reads none."""
        return None

    def _poll_deliveries(self) -> None:
        if self.producer is not None:
            self.producer.poll(0)

    def _in_flight(self, ctx: MessageContext, delivery: Delivery) -> InFlight:
        """The in-flight record of a new message (with step times when profiling)."""
        return InFlight(ctx, delivery, timings={} if self._profile is not None else None)

    def _finished(self, flight: InFlight) -> None:
        self._profile_row(flight, None)

    def _profile_row(self, flight: InFlight, e2e: float | None) -> None:
        """One FogVerse-style profiling row for the message just finished."""
        if self._profile is None:
            return
        ctx, t = flight.ctx, flight.timings or {}
        self._profile.row((
            time.time(), ctx.topic, ctx.partition, ctx.offset,
            *(round(t.get(step, 0.0) * 1000, 4) for step in STEPS),
            None if e2e is None else round(e2e * 1000, 4),
        ))

    @staticmethod
    def _created_now() -> tuple[str, bytes]:
        return (H_CREATED_AT, str(time.time_ns()).encode())

