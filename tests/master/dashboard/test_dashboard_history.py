"""The dashboard's ring of samples: bounded, ordered in time, series aligned."""

from __future__ import annotations

import pytest

from master.dashboard import CHARTS, DashboardHistory, Sample


def test_series_that_come_and_go_are_aligned_with_gaps() -> None:
    history = DashboardHistory(capacity=10)
    history.add(Sample(100.0, {"instances": {"a->b": 1}}))
    history.add(Sample(101.0, {"instances": {"a->b": 2, "b->c": 1}}))
    history.add(Sample(102.0, {"instances": {"b->c": 1}}))

    columns = history.columns()

    assert columns["t"] == [100.0, 101.0, 102.0]
    assert columns["charts"]["instances"] == {"a->b": [1, 2, None], "b->c": [None, 1, 1]}
    assert set(columns["charts"]) == set(CHARTS)
    assert columns["charts"]["lag"] == {}


def test_keeps_only_the_latest_capacity_samples() -> None:
    history = DashboardHistory(capacity=3)
    for i in range(5):
        history.add(Sample(float(i), {"tasks": {"pending": i}}))

    assert len(history) == 3
    assert history.columns()["t"] == [2.0, 3.0, 4.0]
    assert history.columns()["charts"]["tasks"] == {"pending": [2, 3, 4]}


def test_a_wall_clock_stepping_back_keeps_the_time_axis_ordered() -> None:
    history = DashboardHistory()
    history.add(Sample(200.0, {"lag": {"s": 5}}))
    history.add(Sample(150.0, {"lag": {"s": 7}}))

    columns = history.columns()
    assert columns["t"] == [200.0, 200.0]
    assert columns["charts"]["lag"] == {"s": [5, 7]}


def test_capacity_must_hold_a_sample() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DashboardHistory(capacity=0)
