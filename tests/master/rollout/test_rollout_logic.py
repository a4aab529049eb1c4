"""The pure parts of a rollout: each strategy's steps, the health verdicts, the next move."""

from __future__ import annotations

import dataclasses

import pytest

from deploy_scripts import ServiceVersion
from fogverse.errors import ConfigError
from master import master_settings
from master.rollout import Phase, Rollout, RolloutSettings, Strategy
from master.rollout.decide import Act, View, advance
from master.rollout.health import Counts, Health, NewInstance, Verdict, judge
from master.rollout.plan import Step, steps
from master.scheduling.capacity import Capacity, ThermalState
from master.scheduling.validation import unmet_needs

S = RolloutSettings(max_concurrent_deployments=2, batch_pause=1.0, canary_window=30.0,
                    health_window=10.0, start_timeout=20.0, min_sample=10)


@pytest.mark.parametrize(("strategy", "target", "expected"), [
    (Strategy.ROLLING, 5, [Step(2, 10.0, 1.0), Step(4, 10.0, 1.0), Step(5, 10.0)]),
    (Strategy.ROLLING, 2, [Step(2, 10.0)]),
    (Strategy.CANARY, 1, [Step(1, 30.0)]),
    (Strategy.CANARY, 10, [Step(1, 30.0), Step(10, 10.0)]),
    (Strategy.CANARY, 25, [Step(3, 30.0), Step(25, 10.0)]),   # 10 %, rounded up
    (Strategy.BLUE_GREEN, 3, [Step(3, 10.0)]),
    (Strategy.BLUE_GREEN, 0, [Step(1, 10.0)]),                # a stage runs at least one
])
def test_steps_of_each_strategy(strategy: Strategy, target: int, expected: list[Step]) -> None:
    assert steps(strategy, target, S) == expected


def _new(*counts: Counts, beating: bool = True, started: float = 0.0) -> list[NewInstance]:
    return [NewInstance(f"n{i}", started, beating=beating, counts=c) for i, c in enumerate(counts)]


@pytest.mark.parametrize(("new", "old", "now", "window_from", "health", "code"), [
    # Crashes and silence come first, whatever the window.
    ([NewInstance("n0", 0.0, lost="exited before its first heartbeat")], Counts(), 1, None,
     Health.UNHEALTHY, "crashed"),
    (_new(Counts(), beating=False), Counts(), 21, None, Health.UNHEALTHY, "no_heartbeat"),
    (_new(Counts(), beating=False), Counts(), 5, None, Health.UNDECIDED, "starting"),
    # Dead letters against the old version's share in the same window.
    (_new(Counts(40, 0, 40)), Counts(100, 100, 0), 5, 0.0, Health.UNHEALTHY, "dead_letters"),
    (_new(Counts(40, 37, 3)), Counts(100, 94, 6), 11, 0.0, Health.HEALTHY, "healthy"),
    (_new(Counts(5, 0, 5)), Counts(100, 100, 0), 5, 0.0, Health.UNDECIDED, "watching"),  # few
    # A stage that swallows its input.
    (_new(Counts(50, 10, 0)), Counts(100, 100, 0), 5, 0.0, Health.UNHEALTHY, "low_output"),
    # The window runs, then the verdict; a replacement must consume before old ones stop.
    (_new(Counts(30, 30, 0)), Counts(100, 100, 0), 9, 0.0, Health.UNDECIDED, "watching"),
    (_new(Counts(30, 30, 0)), Counts(100, 100, 0), 10, 0.0, Health.HEALTHY, "healthy"),
    (_new(Counts()), Counts(100, 100, 0), 12, 0.0, Health.UNDECIDED, "not_consuming_yet"),
    (_new(Counts()), Counts(100, 100, 0), 31, 0.0, Health.UNHEALTHY, "not_consuming"),
    (_new(Counts()), Counts(), 12, 0.0, Health.HEALTHY, "healthy"),  # no traffic at all
])
def test_health_verdicts(new: list[NewInstance], old: Counts, now: float,
                         window_from: float | None, health: Health, code: str) -> None:
    verdict = judge(new, old, now, window_from, 10.0, True, S)
    assert (verdict.health, verdict.code) == (health, code)
    assert verdict.reason


HEALTHY = Verdict(Health.HEALTHY, "healthy", "fine")
WATCHING = Verdict(Health.UNDECIDED, "watching", "watching")
BAD = Verdict(Health.UNHEALTHY, "dead_letters", "dead-lettered 40/40")


def _rollout(strategy: Strategy, target: int) -> Rollout:
    return Rollout("r1", "svc", ("in", "out"), strategy, ServiceVersion("v1"),
                   ServiceVersion("v2"), target)


class Fleet:
    """Instances as advance() sees them, changed by the moves it asks for."""

    def __init__(self, old: int) -> None:
        self.old = [f"o{i}" for i in range(old)]
        self.new: list[str] = []
        self.wall = 1000.0

    def view(self, verdict: Verdict) -> View:
        return View(self.wall, tuple(self.old),
                    tuple(NewInstance(i, 0.0, beating=True) for i in self.new), verdict)

    def apply(self, act: Act, count: int, ids: tuple[str, ...]) -> None:
        if act is Act.START_NEW:
            self.new += [f"n{len(self.new) + i}" for i in range(count)]
        elif act is Act.START_OLD:
            self.old += [f"o{len(self.old) + i}" for i in range(count)]
        elif act is Act.STOP:
            self.old = [i for i in self.old if i not in ids]
            self.new = [i for i in self.new if i not in ids]


def _run(r: Rollout, fleet: Fleet, verdicts: list[Verdict], settings: RolloutSettings = S) \
        -> tuple[Rollout, list[tuple[str, int, int]]]:
    """Advance until settled; each verdict is used until the phase changes."""
    trail = []
    for _ in range(100):
        if not r.active:
            break
        verdict = verdicts[0] if len(verdicts) == 1 else verdicts.pop(0)
        r, move = advance(r, fleet.view(verdict), settings)
        fleet.apply(move.act, move.count, move.ids)
        fleet.wall += 1.0
        if move.act is not Act.WAIT:
            trail.append((move.act.value, len(fleet.old), len(fleet.new)))
    return r, trail


def test_canary_moves_one_then_the_rest_and_stops_old_only_after_the_new_is_healthy() -> None:
    fleet = Fleet(old=10)
    r, trail = _run(_rollout(Strategy.CANARY, 10), fleet, [HEALTHY])
    assert r.phase is Phase.DONE and (fleet.old, len(fleet.new)) == ([], 10)
    assert trail == [("start_new", 10, 1), ("stop", 9, 1), ("start_new", 9, 10), ("stop", 0, 10)]
    assert any("watching" in h for h in r.history)


def test_rolling_replaces_in_batches_with_a_pause_between() -> None:
    fleet = Fleet(old=3)
    r, trail = _run(_rollout(Strategy.ROLLING, 3), fleet, [HEALTHY])
    assert r.phase is Phase.DONE
    assert trail == [("start_new", 3, 2), ("stop", 1, 2), ("start_new", 1, 3), ("stop", 0, 3)]
    assert any(h.startswith("paused") for h in r.history)


def test_blue_green_starts_a_full_set_beside_the_old_then_switches() -> None:
    fleet = Fleet(old=2)
    r, trail = _run(_rollout(Strategy.BLUE_GREEN, 2), fleet, [HEALTHY])
    assert r.phase is Phase.DONE
    assert trail == [("start_new", 2, 2), ("stop", 0, 2)]


def test_nothing_stops_while_the_new_version_is_still_watched() -> None:
    fleet = Fleet(old=2)
    r, trail = _run(_rollout(Strategy.BLUE_GREEN, 2), fleet, [WATCHING] * 1 + [WATCHING])
    assert r.phase is Phase.WATCHING and trail == [("start_new", 2, 2)]


def test_an_unhealthy_version_is_rolled_back_to_the_old_count() -> None:
    fleet = Fleet(old=4)
    # Healthy through the first rolling batch (two old stopped), then bad.
    r = _rollout(Strategy.ROLLING, 4)
    r, trail = _run(r, fleet, [HEALTHY] * 6 + [BAD])
    assert r.phase is Phase.ROLLED_BACK and "dead-lettered 40/40" in r.reason
    assert (len(fleet.old), fleet.new) == (4, [])
    assert trail[-2:] == [("stop", 2, 0), ("start_old", 4, 0)]


def test_without_rollback_an_unhealthy_version_is_left_and_said() -> None:
    fleet = Fleet(old=2)
    settings = dataclasses.replace(S, rollback_on_failure=False)
    r, _ = _run(_rollout(Strategy.BLUE_GREEN, 2), fleet, [HEALTHY, BAD], settings)
    assert r.phase is Phase.FAILED and "rollback_on_failure off" in r.reason
    assert (len(fleet.old), len(fleet.new)) == (2, 2)


def test_a_busy_stage_waits() -> None:
    r = _rollout(Strategy.CANARY, 2)
    view = dataclasses.replace(Fleet(2).view(HEALTHY), busy=True)
    assert advance(r, view, S) == (r, advance(r, view, S)[1])
    assert advance(r, view, S)[1].act is Act.WAIT


def test_a_rollout_survives_the_state_topic_and_bad_records_are_refused() -> None:
    r = dataclasses.replace(_rollout(Strategy.BLUE_GREEN, 3), phase=Phase.WATCHING, step=0,
                            new=ServiceVersion("v2", module="m2", env={"A": "1"}),
                            history=("started",))
    assert Rollout.from_body(r.to_body()) == r
    for bad in ({"phase": "dancing"}, {"target": -1}, {"strategy": "yolo"}, {"old": 3}):
        with pytest.raises(ValueError):
            Rollout.from_body({**r.to_body(), **bad})


@pytest.mark.parametrize(("capacity", "needs", "lacks"), [
    (Capacity(cpu_cores=4, cpu_utilization=0.5), {"cpu": 1.5}, []),
    (Capacity(cpu_cores=4, cpu_utilization=0.75), {"cpu": 1.5}, ["free core"]),
    (Capacity(cpu_cores=1, memory_mb=1024, memory_used_mb=900), {"memory_mb": 256},
     ["MiB free"]),
    (Capacity(cpu_cores=1), {"gpu": True}, ["no GPU"]),
    (Capacity(cpu_cores=1, battery_powered=True, battery_percent=20.0), {"min_battery": 30},
     ["battery"]),
    (Capacity(cpu_cores=1, battery_powered=True, battery_percent=20.0, is_charging=True),
     {"min_battery": 30}, []),  # charging: the battery is not what pays
    (Capacity(cpu_cores=1, battery_powered=False), {"min_battery": 30}, []),
    (Capacity(cpu_cores=1, thermal_state=ThermalState.HOT), {"max_thermal": "warm"},
     ["thermal"]),
    (Capacity(cpu_cores=1, thermal_state=ThermalState.UNKNOWN), {"max_thermal": "critical"},
     ["thermal"]),
])
def test_needs_against_a_node(capacity: Capacity, needs: dict[str, object],
                              lacks: list[str]) -> None:
    found = unmet_needs(capacity, **needs)  # type: ignore[arg-type]
    assert len(found) == len(lacks) and all(w in f for w, f in zip(lacks, found, strict=True))


@pytest.mark.parametrize(("conf", "setting"), [
    ({"canary_window": -1}, "rollout_config.canary_window"),
    ({"canary_fraction": 0}, "rollout_config.canary_fraction"),
    ({"max_concurrent_deployments": 0}, "rollout_config.max_concurrent_deployments"),
    ({"health_windw": 3}, "rollout_config.health_windw"),
])
def test_bad_rollout_settings_name_the_setting(conf: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        master_settings({"rollout_config": conf}, env={})
    assert info.value.setting == setting
