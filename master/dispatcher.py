"""From raw control-topic values to the registry and the workers; never raises.

Each value is decoded (and its HMAC checked when the master has a control key),
dated (too old, too far ahead or seen before: dropped), counted by kind, and
routed: heartbeats to the registry and to the workers that watch them,
auto-scale requests through the config's limits (:mod:`master.plans`) to the
plan book, goodbyes to the registry. Whatever
cannot be used is counted by reason and logged at powers of two, so a flood of
garbage is visible without flooding the log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence

from deploy_scripts import ServiceSpec
from fogverse.control import (
    AutoScaleRequest,
    ControlDecodeError,
    Heartbeat,
    InstanceStopping,
    RolloutRequest,
    decode_control,
)
from master.plans import RequestRefusedError, StagePlan, plan_for_request
from master.status import ControlCounters
from workers.base import BaseWorker
from workers.registry import InstanceRegistry, stage_name

__all__ = ["Dispatcher", "ReplayGuard"]

log = logging.getLogger("fogverse.master")


class Dispatcher:
    """Routes decoded control messages; ``on_plan`` receives each accepted request's plan."""

    def __init__(
        self,
        registry: InstanceRegistry,
        workers: Sequence[BaseWorker],
        services: Mapping[str, ServiceSpec],
        *,
        control_key: bytes | None,
        stale_after: float,
        max_clock_skew: float,
        on_plan: Callable[[StagePlan], None] | None,
        on_rollout: Callable[[RolloutRequest], None] | None = None,
    ) -> None:
        self._registry = registry
        self._workers = list(workers)
        self._watchers = [w for w in workers if _overrides(w, "on_heartbeat")]
        self._services = services
        self._key = control_key
        self._stale_after = stale_after
        self._skew = max_clock_skew
        self._seen = ReplayGuard(stale_after + max_clock_skew)
        self._on_plan = on_plan
        self._on_rollout = on_rollout
        self.messages: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def counters(self) -> ControlCounters:
        return ControlCounters(dict(self.messages), dict(self.malformed), dict(self.refused))

    def on_batch(self, values: Sequence[bytes | None]) -> None:
        """Dispatch one batch read from the control topic, dated now."""
        now, wall = time.monotonic(), time.time()
        for raw in values:
            self.handle(raw, now, wall)

    def handle(self, raw: bytes | None, now: float, wall: float) -> None:
        """Decode and dispatch one control message; never raises."""
        self._registry.heard(now)  # any message, even one dropped below, proves we read
        try:
            msg = decode_control(raw, self._key)
        except ControlDecodeError as exc:
            self._count(self.malformed, exc.reason, "dropped control message", str(exc))
            return
        if wall - msg.sent_at > self._stale_after:
            self._count(self.malformed, "stale", "dropped control message",
                        f"{msg.kind} from {msg.sender} sent {wall - msg.sent_at:.0f}s ago")
            return
        if msg.sent_at - wall > self._skew:
            self._count(self.malformed, "future", "dropped control message",
                        f"{msg.kind} from {msg.sender} dated {msg.sent_at - wall:.0f}s ahead")
            return
        if self._seen.replayed((msg.sender, msg.kind, msg.sent_at), msg.sent_at, wall):
            self._count(self.malformed, "replayed", "dropped control message",
                        f"{msg.kind} from {msg.sender} sent at {msg.sent_at} seen before")
            return
        self.messages[msg.kind] += 1
        body = msg.body
        try:
            if isinstance(body, Heartbeat):
                self._on_heartbeat(body, now)
            elif isinstance(body, AutoScaleRequest):
                self._on_request(body, now)
            elif isinstance(body, RolloutRequest):
                self._on_rollout_request(body, msg.sender)
            else:
                self._on_stopping(body, now)
        except Exception:
            self._count(self.malformed, "handler_error", "dropped control message",
                        f"{msg.kind} from {msg.sender}")
            log.exception("handling %s from %s failed", msg.kind, msg.sender)

    def _count(self, counter: Counter[str], reason: str, what: str, detail: str) -> None:
        counter[reason] += 1
        count = counter[reason]
        if count & (count - 1) == 0:  # 1st, 2nd, 4th, 8th...: visible, never a flood
            log.warning("%s #%d of this kind: %s", what, count, detail)

    def _on_heartbeat(self, hb: Heartbeat, now: float) -> None:
        seen = self._registry.on_heartbeat(hb, now)
        if seen is None:
            return
        record, new = seen
        if new:
            log.info("instance %s of %r appeared on %s (%s)", hb.instance_id, hb.service_name,
                     hb.node_id or "?", stage_name(record.stage))
        for worker in self._watchers:
            worker.on_heartbeat(hb, now)

    def _on_request(self, request: AutoScaleRequest, now: float) -> None:
        if self._on_plan is None:
            return
        try:
            plan = plan_for_request(request, self._services)
        except RequestRefusedError as exc:
            self._count(self.refused, exc.reason, "refused auto-scale request", str(exc))
            return
        try:
            self._on_plan(plan)
        except RequestRefusedError as exc:
            self._count(self.refused, exc.reason, "refused auto-scale request", str(exc))
            return
        for worker in self._workers:
            worker.on_auto_scale_request(request, now)

    def _on_rollout_request(self, request: RolloutRequest, sender: str) -> None:
        if self._on_rollout is None:
            self._count(self.refused, "no_deployer", "refused rollout request",
                        f"{request.service_name} from {sender}: this master deploys nothing")
            return
        try:
            self._on_rollout(request)
        except ValueError as exc:  # RolloutRefusedError, ConfigError: said, counted, dropped
            self._count(self.refused, "rollout_refused", "refused rollout request",
                        f"{request.service_name} to {request.version} from {sender}: {exc}")

    def _on_stopping(self, notice: InstanceStopping, now: float) -> None:
        record = self._registry.on_stopping(notice)
        if record is not None:
            log.info("instance %s of %s is stopping%s", notice.instance_id,
                     stage_name(record.stage), f": {notice.reason}" if notice.reason else "")
        for worker in self._workers:
            worker.on_instance_stopping(notice, now)


class ReplayGuard:
    """Remembers which messages arrived within the freshness window, to spot replays.

    A message is identified by sender, kind and send time, all covered by the
    signature when there is a key; a sender never dates two of one kind alike.
    Memory is bounded by what arrives within ``window`` seconds: older entries
    go, and messages that old are refused as stale anyway.
    """

    def __init__(self, window: float) -> None:
        self._window = window
        self._seen: set[tuple[str, str, float]] = set()
        self._order: deque[tuple[float, tuple[str, str, float]]] = deque()

    def replayed(self, ident: tuple[str, str, float], sent_at: float, wall: float) -> bool:
        order = self._order
        while order and order[0][0] < wall - self._window:
            self._seen.discard(order.popleft()[1])
        if ident in self._seen:
            return True
        self._seen.add(ident)
        order.append((sent_at, ident))
        return False


def _overrides(worker: BaseWorker, hook: str) -> bool:
    return getattr(type(worker), hook) is not getattr(BaseWorker, hook)
