"""examples/iot/pipeline.py on the real broker: exactly the injected faults raise alerts."""

from __future__ import annotations

import asyncio

import pytest

from examples.iot.pipeline import RunningStats, is_fault, run_pipeline


async def test_every_injected_fault_is_caught_and_nothing_else(kafka_bootstrap: str) -> None:
    result = await asyncio.wait_for(run_pipeline(kafka_bootstrap, 1200), timeout=90)
    assert len(result["faults"]) == 9
    assert result["caught"] == result["faults"]
    assert result["missed"] == [] and result["false_alarms"] == []


def test_running_stats_match_the_textbook_formulas() -> None:
    values = [20.5, 21.0, 19.5, 22.0, 20.0]
    stats = RunningStats()
    for v in values:
        stats.add(v)
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    assert stats.mean == pytest.approx(mean)
    assert stats.std == pytest.approx(variance ** 0.5)


def test_faults_start_after_every_sensor_warmed_up() -> None:
    assert [n for n in range(1, 600) if is_fault(n)] == [388, 485, 582]
