"""The scaling decision rules as a table, plus invariants checked by hypothesis."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from master.scheduling.autoscale import Action, Demand, DeployerSettings, ScaleInputs, decide

S = DeployerSettings(deploy_delay=5.0, after_heartbeat_delay=3.0)
BASE = ScaleInputs(now=100.0, live=1, min_instance=1, max_instance=3,
                   verdict=Demand.NEEDS_MORE, verdict_reason="lag growing", stoppable=0)


def x(**changes: object) -> ScaleInputs:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("inputs", "action", "code", "target"),
    [
        (x(), Action.SCALE_OUT, "needs_more", 2),
        (x(busy=True), Action.HOLD, "busy", 1),
        (x(learning_until=101.0), Action.HOLD, "learning", 1),
        (x(last_action_at=96.0), Action.HOLD, "deploy_delay", 1),
        (x(last_action_at=95.0), Action.SCALE_OUT, "needs_more", 2),
        (x(live=0, verdict=Demand.UNKNOWN), Action.SCALE_OUT, "below_min", 1),
        (x(live=0, spike=True), Action.SCALE_OUT, "below_min", 1),
        (x(live=0, last_action_at=99.0), Action.HOLD, "deploy_delay", 0),
        (x(live=4, stoppable=1, verdict=Demand.STEADY), Action.SCALE_IN, "above_max", 3),
        (x(live=4, stoppable=0), Action.HOLD, "at_max", 4),
        (x(starting=1), Action.HOLD, "starting", 2),
        (x(last_appeared_at=98.0), Action.HOLD, "after_heartbeat_delay", 1),
        (x(last_appeared_at=97.0), Action.SCALE_OUT, "needs_more", 2),
        (x(spike=True, spike_z=3.1), Action.HOLD, "spike", 1),
        (x(live=3), Action.HOLD, "at_max", 3),
        (x(live=2, verdict=Demand.HAS_TOO_MANY, stoppable=1), Action.SCALE_IN, "too_many", 1),
        (x(live=1, verdict=Demand.HAS_TOO_MANY, stoppable=1), Action.HOLD, "at_min", 1),
        (x(live=2, verdict=Demand.HAS_TOO_MANY, stoppable=0), Action.HOLD, "no_handle", 2),
        (x(live=2, verdict=Demand.HAS_TOO_MANY, stoppable=1, spike=True), Action.HOLD,
         "spike", 2),
        (x(verdict=Demand.STEADY, verdict_reason="idle for 1s"), Action.HOLD, "steady", 1),
        (x(verdict=Demand.UNKNOWN, verdict_reason=""), Action.HOLD, "unknown", 1),
    ],
)
def test_decide_table(inputs: ScaleInputs, action: Action, code: str, target: int) -> None:
    decision = decide(inputs, S)
    assert (decision.action, decision.code, decision.target) == (action, code, target)
    assert decision.reason


def test_spike_reason_names_the_z_score() -> None:
    assert "z=3.10" in decide(x(spike=True, spike_z=3.1), S).reason


inputs = st.builds(
    ScaleInputs,
    now=st.floats(0, 1000),
    live=st.integers(0, 10),
    min_instance=st.integers(0, 4),
    max_instance=st.integers(1, 8),
    verdict=st.sampled_from(Demand),
    starting=st.integers(0, 2),
    stoppable=st.integers(0, 10),
    spike=st.booleans(),
    last_action_at=st.none() | st.floats(0, 1000),
    last_appeared_at=st.none() | st.floats(0, 1000),
    busy=st.booleans(),
)


@given(inputs)
def test_invariants(i: ScaleInputs) -> None:
    d = decide(i, S)
    count = i.live + i.starting
    if d.action is not Action.HOLD:
        assert not i.busy
        assert i.last_action_at is None or i.now - i.last_action_at >= S.deploy_delay
    if d.action is Action.SCALE_OUT:
        assert d.target == count + 1
        # past max only never; below min always allowed
        assert count < i.min_instance or d.target <= i.max_instance
        assert count < i.min_instance or not i.spike
    if d.action is Action.SCALE_IN:
        assert d.target == count - 1 and i.stoppable > 0
        assert count > i.max_instance or (d.target >= i.min_instance and not i.spike)


def test_start_backoff_holds_scale_out_but_not_scale_in() -> None:
    s = DeployerSettings()
    below = ScaleInputs(now=10.0, live=0, min_instance=1, max_instance=3,
                        backoff_until=20.0, backoff_reason="2 start(s) in a row failed")
    held = decide(below, s)
    assert held.code == "start_backoff" and "2 start(s) in a row failed" in held.reason
    assert decide(dataclasses.replace(below, now=20.0), s).code == "below_min"
    above = dataclasses.replace(below, live=4, stoppable=1)
    assert decide(above, s).code == "above_max"
