"""Every factor of the compute score, and impossible reports rejected with a counted reason."""

from __future__ import annotations

import math

import pytest
from sched_helpers import desktop, phone

from master.scheduling import (
    Capacity,
    CapacityRejected,
    Scheduler,
    ThermalState,
    capacity_from_report,
    compute_score,
)

IDLE = {"cpu_cores": 4, "cpu_utilization": 0.0, "memory_mb": 4096, "memory_used_mb": 0}


@pytest.mark.parametrize(
    ("battery", "charging", "factor"),
    [
        (None, False, 1.0),     # unknown charge: no penalty
        (5.0, False, 0.2),      # under 20 %
        (19.9, True, 0.2),      # charging does not lift a very low battery
        (20.0, False, 0.6),     # under 50 %
        (49.0, True, 0.6),
        (50.0, False, 1.0),
        (80.0, True, 1.2),      # charging bonus
        (0.0, False, 0.2),      # an empty battery is low, not unknown
    ],
)
def test_power_factor(battery: float | None, charging: bool, factor: float) -> None:
    half = Capacity(**{**IDLE, "cpu_utilization": 0.5}, battery_powered=True,
                    battery_percent=battery, is_charging=charging)
    base = (0.5 + 1.0) / 2
    assert compute_score(half) == pytest.approx(min(1.0, base * factor))


@pytest.mark.parametrize(
    ("thermal", "factor"),
    [(ThermalState.NORMAL, 1.0), (ThermalState.WARM, 0.8), (ThermalState.HOT, 0.4),
     (ThermalState.CRITICAL, 0.1), (ThermalState.UNKNOWN, 0.5)],
)
def test_thermal_factor(thermal: ThermalState, factor: float) -> None:
    assert compute_score(Capacity(**IDLE, thermal_state=thermal)) == pytest.approx(factor)


@pytest.mark.parametrize(
    ("utilization", "used", "reserved_cpu", "reserved_mem", "expected"),
    [
        (0.0, 0, 0.0, 0, 1.0),
        (0.5, 2048, 0.0, 0, 0.5),           # mean of the free CPU and memory shares
        (0.25, 0, 1.0, 1024, 0.625),        # reservations count as used
        (1.0, 4096, 0.0, 0, 0.0),
        (0.9, 0, 2.0, 0, 0.5),              # over-reserved CPU counts as nothing free
    ],
)
def test_free_shares(utilization: float, used: int, reserved_cpu: float, reserved_mem: int,
                     expected: float) -> None:
    cap = Capacity(cpu_cores=4, cpu_utilization=utilization, memory_mb=4096, memory_used_mb=used)
    assert compute_score(cap, reserved_cpu, reserved_mem) == pytest.approx(expected)


def test_score_is_capped_at_one() -> None:
    assert compute_score(phone(cpu_utilization=0.0, memory_used_mb=0, is_charging=True)) == 1.0


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"memory_mb": -1}, "negative_memory", "memory_mb"),
        ({"memory_used_mb": -5}, "negative_memory", "memory_used_mb"),
        ({"memory_used_mb": 5000}, "memory_used_over_total", "memory_used_mb"),
        ({"battery_powered": True, "battery_percent": 250}, "battery_out_of_range",
         "battery_percent"),
        ({"battery_percent": -1}, "battery_out_of_range", "battery_percent"),
        ({"thermal_state": "toasty"}, "unknown_thermal_state", "thermal_state"),
        ({"cpu_utilization": math.nan}, "not_finite", "cpu_utilization"),
        ({"network_latency_ms": math.inf}, "not_finite", "network_latency_ms"),
        ({"memory_mb": math.nan}, "not_an_integer", "memory_mb"),
        ({"cpu_utilization": 1.5}, "utilization_out_of_range", "cpu_utilization"),
        ({"cpu_cores": 0}, "cpu_cores_below_one", "cpu_cores"),
        ({"cpu_cores": "eight"}, "not_a_number", "cpu_cores"),
        ({"is_charging": "yes"}, "not_a_boolean", "is_charging"),
        ({"network_bandwidth_mbps": -3}, "negative_bandwidth", "network_bandwidth_mbps"),
        ({"cpu_speed": 0}, "speed_not_positive", "cpu_speed"),
        ({"flux_capacitor": 1}, "unknown_field", "flux_capacitor"),
    ],
)
def test_impossible_reports_are_rejected(change: dict[str, object], reason: str,
                                         field: str) -> None:
    with pytest.raises(CapacityRejected) as caught:
        capacity_from_report({**IDLE, **change})
    assert (caught.value.reason, caught.value.field) == (reason, field)
    assert field in str(caught.value)


def test_a_good_report_round_trips() -> None:
    cap = capacity_from_report({**IDLE, "thermal_state": "warm", "battery_powered": True,
                                "battery_percent": 64, "is_charging": True})
    assert cap.thermal_state is ThermalState.WARM
    assert cap.battery_percent == 64.0


def test_rejections_are_counted_and_never_scored() -> None:
    scheduler = Scheduler()
    scheduler.register_node("ok", desktop())
    bad_reports = [{**IDLE, "memory_mb": -1}, {**IDLE, "battery_percent": 250.0},
                   {**IDLE, "thermal_state": "lava"}, {**IDLE, "cpu_utilization": math.nan}]
    for report in bad_reports:
        with pytest.raises(CapacityRejected):
            scheduler.register_node("bad", report)
        with pytest.raises(CapacityRejected):
            scheduler.update_node("ok", report)
    status = scheduler.get_system_status()
    assert status["nodes"]["total"] == 1
    assert status["statistics"]["reports_rejected"] == 8
    assert status["statistics"]["rejected_reasons"] == {
        "battery_out_of_range": 2, "negative_memory": 2, "not_finite": 2,
        "unknown_thermal_state": 2}
    assert scheduler.nodes["ok"].capacity == desktop()  # the bad update changed nothing
