"""Who is alive, learned from heartbeats alone, and how fast each stage works.

A *stage* is a (source topic, target topic) pair; every instance announcing the
same pair is one more replica of the same stage, counted once. An instance is
live until it says goodbye or misses ``expiry_beats`` heartbeats in a row.

Rates come from the latest heartbeat of each live instance (its counts over the
interval they cover), so the master needs no clock agreement with any host.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from fogverse.control import Heartbeat, InstanceStopping

__all__ = [
    "DEFAULT_EXPIRY_BEATS",
    "InstanceRecord",
    "InstanceRegistry",
    "StageKey",
    "StageRates",
    "TopicRates",
    "stage_name",
]

StageKey: TypeAlias = tuple[str | None, str | None]
"""(source topic, target topic); a source has no source topic, a sink no target."""

DEFAULT_EXPIRY_BEATS = 3
"""Missed heartbeats before an instance counts as gone: one late beat is noise,
three in a row (3 s at the default 1 s interval) is a dead or frozen process."""

_MAX_EXPIRY_INTERVAL = 30.0
# A sender that beats only when it has work (FogVerse style) may report a long
# interval; cap it so a crashed one still expires within reasonable time.


_RETIRED_MEMORY = 300.0

DEFAULT_BLIND_LIMIT = 60.0
"""Seconds of silence on the whole control topic after which the master stops
giving instances the benefit of the doubt (see :meth:`InstanceRegistry.expire`)."""


def stage_name(key: StageKey) -> str:
    """``source->target`` with ``-`` standing for a missing side."""
    return f"{key[0] or '-'}->{key[1] or '-'}"


@dataclass(slots=True)
class InstanceRecord:
    """What the master knows about one instance, from its latest heartbeat."""

    instance_id: str
    service_name: str
    stage: StageKey
    node_id: str
    group_id: str | None
    first_seen: float
    last_seen: float
    interval: float
    consumed_rate: float = 0.0
    produced_rate: float = 0.0
    busy: float | None = None
    """Fraction of the last interval spent in process(); None when not reported."""
    lag: int | None = None
    beats: int = 0
    forgiven_until: float = float("-inf")
    """Not expired before this: its deadline passed while the master heard nothing at all."""
    consumed_total: int = 0
    produced_total: int = 0
    dead_lettered_total: int = 0
    """Counts since the master first heard it (for judging a rollout over a window)."""
    version: str = ""
    """The version its heartbeats say it runs."""

    def expires_at(self, expiry_beats: int) -> float:
        return max(self.last_seen + min(self.interval, _MAX_EXPIRY_INTERVAL) * expiry_beats,
                   self.forgiven_until)

    def next_beat_due(self) -> float:
        return self.last_seen + min(self.interval, _MAX_EXPIRY_INTERVAL)

    def window(self, expiry_beats: int) -> float:
        return min(self.interval, _MAX_EXPIRY_INTERVAL) * expiry_beats

    def update(self, hb: Heartbeat, now: float) -> None:
        self.last_seen = now
        self.interval = hb.interval
        self.consumed_rate = hb.consumed / hb.interval
        self.produced_rate = hb.produced / hb.interval
        self.busy = None if hb.processing_seconds is None else hb.processing_seconds / hb.interval
        self.lag = hb.lag
        self.beats += 1
        self.consumed_total += hb.consumed
        self.produced_total += hb.produced
        self.dead_lettered_total += hb.dead_lettered
        self.version = hb.version or self.version
        if hb.group_id is not None:
            self.group_id = hb.group_id


@dataclass(frozen=True, slots=True)
class TopicRates:
    """Messages per second flowing into and out of one topic, from live instances."""

    produced_into: float = 0.0
    producers: int = 0
    consumed_from: float = 0.0
    consumers: int = 0

    @property
    def arrival(self) -> float | None:
        """The topic's input rate, or None when no live instance reports writing to it."""
        return self.produced_into if self.producers else None


@dataclass(frozen=True, slots=True)
class StageRates:
    """The summed rates of one stage's live instances."""

    live: int = 0
    consumed: float = 0.0
    produced: float = 0.0
    busy: float | None = None
    """Summed busy fractions (1.0 = one instance fully busy); None if any is unknown."""


@dataclass
class InstanceRegistry:
    """Live instances by id and by stage. All methods take the caller's ``now``."""

    expiry_beats: int = DEFAULT_EXPIRY_BEATS
    blind_limit: float = DEFAULT_BLIND_LIMIT
    heard_at: float | None = None
    """When the last control message of any kind arrived (see :meth:`heard`)."""
    _by_id: dict[str, InstanceRecord] = field(default_factory=dict)
    _by_stage: dict[StageKey, dict[str, InstanceRecord]] = field(default_factory=dict)
    _declared_by_target: dict[str, StageKey] = field(default_factory=dict)
    _retired: dict[str, float] = field(default_factory=dict)
    _shortest_interval: float = _MAX_EXPIRY_INTERVAL
    """The shortest heartbeat interval ever reported (capped as deadlines are)."""

    def declare_stage(self, key: StageKey) -> None:
        """Make heartbeats that name only this stage's target (FogVerse style) count for it."""
        if key[1] is not None and key[0] is not None:
            self._declared_by_target.setdefault(key[1], key)

    def on_heartbeat(self, hb: Heartbeat, now: float) -> tuple[InstanceRecord, bool] | None:
        """Record a heartbeat; returns the instance and whether it is new.

        None for an instance the master is stopping: it still drains and beats,
        but it is no longer capacity.
        """
        if hb.instance_id in self._retired:
            return None
        if hb.interval < self._shortest_interval:
            self._shortest_interval = hb.interval
        record = self._by_id.get(hb.instance_id)
        if record is not None:
            record.update(hb, now)
            return record, False
        record = InstanceRecord(
            hb.instance_id, hb.service_name, self._stage_of(hb), hb.node_id, hb.group_id,
            first_seen=now, last_seen=now, interval=hb.interval,
        )
        record.update(hb, now)
        self._by_id[hb.instance_id] = record
        self._by_stage.setdefault(record.stage, {})[hb.instance_id] = record
        return record, True

    def _stage_of(self, hb: Heartbeat) -> StageKey:
        if hb.source_topic is None and hb.target_topic is not None:
            declared = self._declared_by_target.get(hb.target_topic)
            if declared is not None:
                return declared
        return (hb.source_topic, hb.target_topic)

    def on_stopping(self, notice: InstanceStopping) -> InstanceRecord | None:
        """Forget an instance that said goodbye."""
        return self._remove(notice.instance_id)

    def retire(self, instance_id: str, now: float) -> None:
        """Stop counting an instance the master is stopping, even while it still beats."""
        self._retired[instance_id] = now
        self._remove(instance_id)

    def heard(self, now: float) -> None:
        """Note that a control message (of any kind, even a malformed one) arrived.

        An instance whose deadline passed while nothing at all arrived gets a
        fresh window from now: a silent control topic (a partition leader
        change, the master's consumer rebalancing) says nothing about it.
        """
        previous = self.heard_at
        self.heard_at = now
        if previous is None or not self._gap_can_hide_a_deadline(now - previous):
            return
        for r in self._by_id.values():
            if previous < r.next_beat_due() and now > r.expires_at(self.expiry_beats):
                r.forgiven_until = now + r.window(self.expiry_beats)

    def _gap_can_hide_a_deadline(self, gap: float) -> bool:
        """Whether some instance's whole grace, from its next beat due to its
        deadline, may fit in a silence of ``gap`` seconds.

        That grace is at least ``(expiry_beats - 1)`` times the shortest interval
        ever reported, so a shorter gap (every gap while messages flow) hides no
        deadline and needs no look at each instance: this keeps the per-message
        cost flat however many instances there are.
        """
        return gap > (self.expiry_beats - 1) * self._shortest_interval

    def silent_for(self, now: float) -> float | None:
        """Seconds since any control message arrived; None if none ever did."""
        return None if self.heard_at is None else now - self.heard_at

    def blind(self, now: float) -> list[InstanceRecord]:
        """Instances past their deadline that :meth:`expire` keeps because the whole
        control topic has been silent since they were due."""
        if self.heard_at is None or not self._gap_can_hide_a_deadline(now - self.heard_at):
            return []
        return [r for r in self._by_id.values()
                if now > r.expires_at(self.expiry_beats) and not self._own_silence(r, now)]

    def _own_silence(self, r: InstanceRecord, now: float) -> bool:
        """Whether ``r``'s silence is its own: others were heard after its beat was due,
        or nothing was heard for longer than ``blind_limit``."""
        if self.heard_at is None:
            return True  # heard() is not in use: every silence counts
        return self.heard_at > r.next_beat_due() or now - self.heard_at > self.blind_limit

    def unretire(self, instance_id: str) -> None:
        """Count an instance again (stopping it failed): its next heartbeat makes it live."""
        self._retired.pop(instance_id, None)

    def expire(self, now: float) -> list[InstanceRecord]:
        """Drop and return instances whose heartbeats stopped.

        An instance is not expired while the master heard nothing at all since
        its next beat was due (unless that lasts ``blind_limit``): the silence
        may be the master's own blindness, and expiring every instance would
        make the deployer replace healthy ones.
        """
        gone = [r for r in self._by_id.values()
                if now > r.expires_at(self.expiry_beats) and self._own_silence(r, now)]
        for record in gone:
            self._remove(record.instance_id)
        # A retired id is remembered only as long as a draining process may beat.
        for instance_id, at in list(self._retired.items()):
            if now - at > _RETIRED_MEMORY:
                del self._retired[instance_id]
        return gone

    def _remove(self, instance_id: str) -> InstanceRecord | None:
        record = self._by_id.pop(instance_id, None)
        if record is not None:
            members = self._by_stage.get(record.stage)
            if members is not None:
                members.pop(instance_id, None)
                if not members:
                    del self._by_stage[record.stage]
        return record

    def is_retired(self, instance_id: str) -> bool:
        return instance_id in self._retired

    # -- reading --------------------------------------------------------------------

    def get(self, instance_id: str) -> InstanceRecord | None:
        return self._by_id.get(instance_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[InstanceRecord]:
        return iter(list(self._by_id.values()))

    def stages(self) -> list[StageKey]:
        return list(self._by_stage)

    def instances(self, stage: StageKey) -> list[InstanceRecord]:
        return list(self._by_stage.get(stage, {}).values())

    def live_count(self, stage: StageKey) -> int:
        return len(self._by_stage.get(stage, ()))

    def stage_rates(self, stage: StageKey) -> StageRates:
        members = self._by_stage.get(stage)
        if not members:
            return StageRates()
        consumed = produced = busy = 0.0
        busy_known = True
        for r in members.values():
            consumed += r.consumed_rate
            produced += r.produced_rate
            if r.busy is None:
                busy_known = False
            else:
                busy += r.busy
        return StageRates(len(members), consumed, produced, busy if busy_known else None)

    def topic_rates(self) -> dict[str, TopicRates]:
        """Rates for every topic some live instance reads or writes (one pass)."""
        into: dict[str, list[float]] = {}
        out: dict[str, list[float]] = {}
        for (source, target), members in self._by_stage.items():
            if target is not None:
                acc = into.setdefault(target, [0.0, 0.0])
                acc[0] += sum(r.produced_rate for r in members.values())
                acc[1] += len(members)
            if source is not None:
                acc = out.setdefault(source, [0.0, 0.0])
                acc[0] += sum(r.consumed_rate for r in members.values())
                acc[1] += len(members)
        result: dict[str, TopicRates] = {}
        for topic in into.keys() | out.keys():
            p = into.get(topic, [0.0, 0.0])
            c = out.get(topic, [0.0, 0.0])
            result[topic] = TopicRates(p[0], int(p[1]), c[0], int(c[1]))
        return result

    def last_appeared(self, stage: StageKey) -> float | None:
        """When the newest live instance of ``stage`` sent its first heartbeat."""
        members = self._by_stage.get(stage)
        return max((r.first_seen for r in members.values()), default=None) if members else None
