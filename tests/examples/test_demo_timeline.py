"""The demo's bookkeeping: what it reports comes from the samples it saw."""

from __future__ import annotations

from examples.demo.display import render_table
from examples.demo.timeline import Sample, Timeline


def sample(t: float, live: int, placement: dict[str, str], rate: float = 0.0,
           phase: str = "load step") -> Sample:
    return Sample(t=t, phase=phase, camera_rate=60, produced=0, received=0,
                  analysed_rate=rate, live=live, placement=placement)


def test_events_say_where_instances_started_stopped_and_moved() -> None:
    timeline = Timeline(min_instance=1)
    assert timeline.add(sample(0, 0, {})) == []
    started = timeline.add(sample(1, 1, {"a": "phone"}))
    assert [e.text for e in started] == ["a started on phone (1 running)"]
    moved = timeline.add(sample(2, 2, {"a": "desktop", "b": "phone"}))
    assert [e.text for e in moved] == ["a moved from phone to desktop (2 running)",
                                       "b started on phone (2 running)"]
    stopped = timeline.add(sample(3, 1, {"b": "phone"}))
    assert [e.text for e in stopped] == ["a stopped on desktop (1 running)"]
    assert timeline.started_on == {"phone": ["a", "b"], "desktop": ["a"]}


def test_scale_counts_ignore_the_first_start_and_moves() -> None:
    timeline = Timeline(min_instance=1)
    for t, placement in enumerate([{}, {"a": "p"}, {"a": "p", "b": "d"},
                                   {"a": "d", "b": "d"}, {"a": "d", "b": "d", "c": "p"},
                                   {"a": "d"}]):
        timeline.add(sample(t, len(placement), placement))
    assert timeline.scale_counts() == (2, 2)
    assert timeline.instance_steps() == [(0, 0), (1, 1), (2, 2), (4, 3), (5, 1)]


def test_throughput_compares_one_instance_with_the_most_leaving_out_rebalances() -> None:
    timeline = Timeline(min_instance=1)
    rows = [(0, 1, 100.0, "warm-up"), (1, 1, 10.0, "load step"),  # the step's first seconds
            (4, 1, 25.0, "load step"), (5, 1, 23.0, "load step"),
            (6, 3, 10.0, "load step"),  # the group rebalancing: left out
            (9, 3, 70.0, "load step"), (10, 3, 74.0, "load step"), (14, 3, 500.0, "calm")]
    for t, live, rate, phase in rows:
        timeline.add(sample(t, live, {}, rate, phase))
    assert timeline.throughput("load step") == (24.0, 72.0)


def test_summary_counts_the_lost_and_the_duplicated() -> None:
    timeline = Timeline(min_instance=1)
    timeline.add(sample(0, 1, {"a": "phone"}))
    summary = timeline.summary(produced=10, missing=[3, 7], duplicates=1, load_phase="load step")
    assert (summary["produced"], summary["delivered"], summary["lost"],
            summary["duplicates"]) == (10, 8, 2, 1)
    assert summary["ran_on"] == {"phone": 1}


def test_render_table_pads_columns() -> None:
    assert render_table(["node", "n"], [["desktop", "2"], ["phone", "10"]]).splitlines() == [
        "node     n", "-------  --", "desktop  2", "phone    10"]
