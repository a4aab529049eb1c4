"""INPUT_OUTPUT_WORKER: the verdict per stage from ratios and lag, as tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from worker_helpers import beat

from workers.input_output import (
    InputOutputSettings,
    InputOutputWorker,
    StageSample,
    StageTracker,
    Verdict,
    assess,
    lag_slope,
)
from workers.registry import InstanceRegistry

S = InputOutputSettings(scale_in_hold=5.0)


def window(
    arrival: float | None, output: float, lags: list[int | None], consumed: float | None = None,
    busy: float | None = None, live: int = 1,
) -> list[StageSample]:
    return [
        StageSample(at=float(i), arrival=arrival, output=output,
                    consumed=output if consumed is None else consumed, lag=lag, busy=busy,
                    live=live)
        for i, lag in enumerate(lags)
    ]


@pytest.mark.parametrize(
    ("samples", "verdict", "why"),
    [
        # keeps up, nothing waiting: fine
        (window(100, 100, [0, 0, 0]), Verdict.STEADY, "idle for"),
        # output far under input and messages piling up
        (window(100, 40, [50, 110, 170]), Verdict.NEEDS_MORE, "lag growing"),
        # zero output with input waiting: needs more, never "stop"
        (window(100, 0, [500, 500, 500]), Verdict.NEEDS_MORE, "output/input 0.00"),
        # zero output and no lag reading at all: still needs more
        (window(100, 0, [None, None, None]), Verdict.NEEDS_MORE, "output/input 0.00"),
        # low ratio but nothing waits: a filtering stage, not a slow one
        (window(100, 30, [0, 2, 1]), Verdict.STEADY, "scale_in_ratio"),
        # a filtering stage whose lag is unknown: it reads all that arrives
        (window(100, 10, [None, None, None], consumed=100), Verdict.STEADY, "scale_in_ratio"),
        (window(None, 10, [None, None, None], consumed=100), Verdict.STEADY, "scale_in_ratio"),
        # lag unknown, but it reads half of what arrives: messages must be waiting
        (window(100, 5, [None, None, None], consumed=50), Verdict.NEEDS_MORE, "lag unknown"),
        # lag high but shrinking: catching up
        (window(100, 150, [900, 800, 700]), Verdict.STEADY, "lag 700 > idle_lag"),
        # too few samples
        (window(100, 100, [0]), Verdict.UNKNOWN, "settling"),
        # no writer reports into the source: input = consumed + lag growth
        (window(None, 50, [100, 200, 300], consumed=50), Verdict.NEEDS_MORE, "lag growing"),
        # unknown lag, no input, but output flowing: draining an unseen backlog
        (window(0, 20, [None, None, None]), Verdict.STEADY, "backlog"),
        # idle, but one instance fewer would be overloaded
        (window(10, 10, [0, 0, 0], busy=1.5, live=2), Verdict.STEADY, "would be 150% busy"),
    ],
)
def test_assess_table(samples: list[StageSample], verdict: Verdict, why: str) -> None:
    result = assess(samples, samples[-1].at, S, None)
    assert result.verdict is verdict
    assert why in result.reason


def test_has_too_many_only_after_the_hold() -> None:
    samples = window(0, 0, [0, 0, 0])
    first = assess(samples, 2.0, S, None)
    assert first.verdict is Verdict.STEADY and first.idle_since == 2.0
    later = assess(samples, 6.9, S, first.idle_since)
    assert later.verdict is Verdict.STEADY
    done = assess(samples, 7.0, S, first.idle_since)
    assert done.verdict is Verdict.HAS_TOO_MANY
    assert "idle for 5.0s" in done.reason and done.ratio is None


def test_idle_clock_resets_when_load_returns() -> None:
    tracker = StageTracker(S)
    for t in range(4):
        tracker.add(StageSample(float(t), 0.0, 0.0, 0.0, 0, live=2))
    assert tracker.idle_since is not None
    tracker.add(StageSample(4.0, 100.0, 20.0, 20.0, 80, live=2))
    assert tracker.idle_since is None


def test_window_restarts_when_the_instance_count_changes() -> None:
    tracker = StageTracker(S)
    for t in range(5):
        tracker.add(StageSample(float(t), 100.0, 40.0, 40.0, 100 * t, live=1))
    assert tracker.last.verdict is Verdict.NEEDS_MORE
    tracker.add(StageSample(5.0, 100.0, 100.0, 100.0, 400, live=2))
    assert tracker.last.verdict is Verdict.UNKNOWN
    tracker.add(StageSample(6.0, 100.0, 120.0, 120.0, 380, live=2))
    assert tracker.last.verdict is Verdict.STEADY  # judged on the new set-up only


def test_window_drops_old_samples() -> None:
    tracker = StageTracker(InputOutputSettings(window_seconds=3))
    for t in range(10):
        tracker.add(StageSample(float(t), 1.0, 1.0, 1.0, 0, live=1))
    assert [s.at for s in tracker.samples] == [6.0, 7.0, 8.0, 9.0]


@pytest.mark.parametrize(
    ("lags", "slope"),
    [([0, 10, 20], 10.0), ([5, 5, 5], 0.0), ([30, 20, 10], -10.0), ([None, 4], None),
     ([7], None), ([None, 0, None, 20], 10.0)],
)
def test_lag_slope(lags: list[int | None], slope: float | None) -> None:
    result = lag_slope(window(1, 1, lags))
    assert result == (None if slope is None else pytest.approx(slope))


@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e6),
                          st.none() | st.integers(0, 10**9)), min_size=2, max_size=30))
def test_assess_never_fails(rows: list[tuple[float, float, int | None]]) -> None:
    samples = [StageSample(float(i), a, o, o, lag) for i, (a, o, lag) in enumerate(rows)]
    result = assess(samples, float(len(rows)), S, None)
    assert result.verdict in Verdict
    if result.ratio == 0 and (result.lag is None or result.lag > S.idle_lag):
        assert result.verdict is Verdict.NEEDS_MORE


def test_settings_validate() -> None:
    with pytest.raises(ValueError):
        InputOutputSettings(input_output_ratio_threshold=0)
    with pytest.raises(ValueError):
        InputOutputSettings(min_samples=1)


async def test_worker_counts_a_stage_once_however_many_instances_announce_it() -> None:
    registry = InstanceRegistry()
    lags = {"g": 0}

    async def read_lag(group: str, topic: str) -> int | None:
        assert topic == "in"
        return lags[group]

    worker = InputOutputWorker(registry, InputOutputSettings(scale_in_hold=2), read_lag)
    for t in range(4):
        now = float(t)
        registry.on_heartbeat(beat("src", source=None, target="in", produced=90), now)
        for i in range(3):
            registry.on_heartbeat(beat(f"w{i}", consumed=30, produced=30), now)
        await worker.refresh_lags(now)
        await worker.tick(now)
    status = worker.status().stages
    assert list(status) == ["in->out"]
    assert status["in->out"].ratio == 1.0
    assert status["in->out"].input_rate == 90.0
    assessment = worker.assessment(("in", "out"))
    assert assessment is not None and assessment.verdict is Verdict.HAS_TOO_MANY


async def test_worker_reports_needs_more_from_broker_lag() -> None:
    registry = InstanceRegistry()
    lag = [0]

    async def read_lag(group: str, topic: str) -> int | None:
        return lag[0]

    worker = InputOutputWorker(registry, S, read_lag)
    for t in range(5):
        registry.on_heartbeat(beat("w0", consumed=20, produced=20), float(t))
        lag[0] = 80 * t
        await worker.refresh_lags(float(t))
        worker.sample(float(t))
    assessment = worker.assessment(("in", "out"))
    assert assessment is not None and assessment.verdict is Verdict.NEEDS_MORE
    assert assessment.input_rate == pytest.approx(100.0)


async def test_a_failing_lag_reader_means_unknown_lag_not_a_crash() -> None:
    registry = InstanceRegistry()

    async def broken(group: str, topic: str) -> int | None:
        raise RuntimeError("broker away")

    worker = InputOutputWorker(registry, S, broken)
    registry.on_heartbeat(beat("w0", consumed=5, produced=5), 0.0)
    await worker.refresh_lags(0.0)
    worker.sample(0.0)
    worker.sample(1.0)
    assessment = worker.assessment(("in", "out"))
    assert assessment is not None and assessment.lag is None
