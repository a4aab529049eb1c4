"""The instance registry: liveness from heartbeats alone, stages counted once."""

from __future__ import annotations

import pytest
from worker_helpers import beat

from fogverse.control import InstanceStopping
from workers.registry import InstanceRegistry, stage_name


def test_instances_of_one_stage_are_one_stage_with_summed_rates() -> None:
    registry = InstanceRegistry()
    for i in range(3):
        registry.on_heartbeat(beat(f"w{i}", consumed=20, produced=10, processing=0.5), 0.0)
    assert registry.stages() == [("in", "out")]
    rates = registry.stage_rates(("in", "out"))
    assert (rates.live, rates.consumed, rates.produced, rates.busy) == (3, 60.0, 30.0, 1.5)


def test_rates_use_the_interval_each_beat_covers() -> None:
    registry = InstanceRegistry()
    registry.on_heartbeat(beat("w", consumed=10, produced=10, interval=2.0), 0.0)
    assert registry.stage_rates(("in", "out")).consumed == 5.0


@pytest.mark.parametrize(("silence", "alive"), [(2.9, True), (3.1, False)])
def test_an_instance_expires_after_three_missed_beats(silence: float, alive: bool) -> None:
    registry = InstanceRegistry(expiry_beats=3)
    registry.on_heartbeat(beat("w"), 10.0)
    gone = registry.expire(10.0 + silence)
    assert (registry.live_count(("in", "out")) == 1) is alive
    assert [r.instance_id for r in gone] == ([] if alive else ["w"])


def test_goodbye_and_retire() -> None:
    registry = InstanceRegistry()
    registry.on_heartbeat(beat("a"), 0.0)
    registry.on_heartbeat(beat("b"), 0.0)
    assert registry.on_stopping(InstanceStopping("a")) is not None
    registry.retire("b", 1.0)
    assert registry.live_count(("in", "out")) == 0
    assert registry.on_heartbeat(beat("b"), 2.0) is None  # draining, not capacity
    registry.expire(1000.0)
    assert registry.on_heartbeat(beat("b"), 1000.0) is not None  # forgotten after a while


def test_first_heartbeat_is_new_and_topics_get_rates() -> None:
    registry = InstanceRegistry()
    seen = registry.on_heartbeat(beat("src", source=None, target="in", produced=50), 0.0)
    assert seen is not None and seen[1] is True
    again = registry.on_heartbeat(beat("src", source=None, target="in", produced=50), 1.0)
    assert again is not None and again[1] is False
    registry.on_heartbeat(beat("w", consumed=40, produced=40), 1.0)
    rates = registry.topic_rates()
    assert rates["in"].arrival == 50.0 and rates["in"].consumed_from == 40.0
    assert rates["out"].produced_into == 40.0 and rates["out"].consumed_from == 0.0
    assert registry.last_appeared(("in", "out")) == 1.0


def test_fogverse_heartbeats_naming_only_the_target_join_the_declared_stage() -> None:
    registry = InstanceRegistry()
    registry.declare_stage(("in", "out"))
    registry.on_heartbeat(beat("fv", source=None, target="out", produced=5), 0.0)
    assert registry.live_count(("in", "out")) == 1
    assert stage_name((None, "out")) == "-->out"


def _heard_beat(registry: InstanceRegistry, instance_id: str, now: float) -> None:
    registry.heard(now)
    registry.on_heartbeat(beat(instance_id), now)


def test_a_silent_control_topic_expires_nobody_and_resuming_gives_a_fresh_window() -> None:
    registry = InstanceRegistry(expiry_beats=3)
    for t in (0.0, 1.0, 2.0):
        _heard_beat(registry, "a", t)
        _heard_beat(registry, "b", t + 0.5)
    # Nothing at all arrives for 10 s: the master may be the one not hearing.
    assert registry.expire(12.0) == []
    assert {r.instance_id for r in registry.blind(12.0)} == {"a", "b"}
    assert registry.live_count(("in", "out")) == 2
    # Reading resumes; "a" beats at once, "b" gets a fresh window from now...
    _heard_beat(registry, "a", 12.6)
    assert registry.expire(13.0) == []
    _heard_beat(registry, "a", 13.6)
    _heard_beat(registry, "a", 14.6)
    _heard_beat(registry, "a", 15.5)
    # ...and, still silent while "a" beats, is gone once that window is over.
    assert [r.instance_id for r in registry.expire(15.7)] == ["b"]
    assert registry.live_count(("in", "out")) == 1


def test_one_silent_instance_among_beating_ones_expires_as_before() -> None:
    registry = InstanceRegistry(expiry_beats=3)
    _heard_beat(registry, "dead", 0.0)
    for t in (0.0, 1.0, 2.0, 3.0):
        _heard_beat(registry, "alive", t + 0.2)
    assert [r.instance_id for r in registry.expire(3.3)] == ["dead"]


def test_a_lone_dead_instance_expires_once_the_silence_outlasts_the_blind_limit() -> None:
    registry = InstanceRegistry(expiry_beats=3, blind_limit=60.0)
    _heard_beat(registry, "lone", 0.0)
    assert registry.expire(30.0) == []
    assert [r.instance_id for r in registry.expire(60.5)] == ["lone"]
