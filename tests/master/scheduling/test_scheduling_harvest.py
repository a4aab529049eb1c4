"""Harvest mode: idle resources only, at night, within session limits; the ledger counts them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sched_helpers import phone, task

from master.scheduling import HarvestProfile, HarvestSignals, Scheduler

NIGHT = 23 * 3600.0      # 23:00 UTC
DAY = 12 * 3600.0
READY = phone(is_charging=True, battery_percent=60.0, cpu_temperature_c=35.0,
              cpu_utilization=0.0, memory_used_mb=0)


def harvester(now: float, signals: HarvestSignals | None = None, **changes: object) -> Scheduler:
    scheduler = Scheduler()
    scheduler.register_node("h", replace(READY, **changes), now, harvest=HarvestProfile(),
                            signals=signals or HarvestSignals())
    return scheduler


@pytest.mark.parametrize(
    ("now", "signals", "changes", "reason"),
    [
        (NIGHT, None, {}, None),
        (DAY, None, {}, "outside_window"),
        (6.9 * 3600, None, {}, None),                             # window ends at 07:00
        (7.0 * 3600, None, {}, "outside_window"),
        (NIGHT, None, {"is_charging": False}, "not_charging"),
        (NIGHT, None, {"battery_percent": 20.0}, "battery_low"),
        (NIGHT, None, {"cpu_temperature_c": 45.0}, "too_hot"),
        (NIGHT, None, {"network_metered": True}, "metered_network"),
        (NIGHT, HarvestSignals(screen_on=True), {}, "screen_on"),
        (NIGHT, HarvestSignals(user_idle=False), {}, "user_active"),
    ],
)
def test_eligibility(now: float, signals: HarvestSignals | None, changes: dict[str, object],
                     reason: str | None) -> None:
    scheduler = harvester(now, signals, **changes)
    assert scheduler.nodes["h"].harvest_reason == reason
    scheduler.submit(task(cpu_millicores=500, memory_mb=256), now)
    assert len(scheduler.schedule(now).assigned) == (1 if reason is None else 0)


def test_local_time_decides_the_window() -> None:
    scheduler = Scheduler()
    tokyo = HarvestProfile(utc_offset_minutes=9 * 60)      # 14:00 UTC is 23:00 in Tokyo
    scheduler.register_node("h", READY, 14 * 3600.0, harvest=tokyo)
    assert scheduler.nodes["h"].harvest_reason is None


def test_resources_are_capped_at_half_the_cpu_and_30_percent_memory() -> None:
    scheduler = harvester(NIGHT)                            # 4 cores, 6144 MB, all idle
    too_much_cpu = scheduler.submit(task(cpu_millicores=2500, memory_mb=256), NIGHT)
    too_much_mem = scheduler.submit(task(cpu_millicores=500, memory_mb=1900), NIGHT)
    fits = scheduler.submit(task(cpu_millicores=2000, memory_mb=1800), NIGHT)
    assert scheduler.get_task_status(too_much_cpu)["status"] == "failed"  # type: ignore[index]
    assert scheduler.get_task_status(too_much_mem)["status"] == "failed"  # type: ignore[index]
    assert [a.task_id for a in scheduler.schedule(NIGHT).assigned] == [fits]


def test_sessions_last_eight_hours_then_rest_thirty_minutes() -> None:
    start = 22 * 3600.0
    profile = HarvestProfile(window_start_hour=0.0, window_end_hour=24.0)
    scheduler = Scheduler()
    scheduler.register_node("h", READY, start, harvest=profile)
    node = scheduler.nodes["h"]
    scheduler.schedule(start + 8 * 3600 - 1)
    assert node.harvest_reason is None
    scheduler.schedule(start + 8 * 3600)
    assert node.harvest_reason == "harvest_rest"
    scheduler.schedule(start + 8 * 3600 + 29 * 60)
    assert node.harvest_reason == "harvest_rest"
    scheduler.schedule(start + 8 * 3600 + 30 * 60)
    assert node.harvest_reason is None


def test_the_ledger_counts_hours_and_charging_hours() -> None:
    scheduler = harvester(NIGHT)
    task_id = scheduler.submit(task(cpu_millicores=500, memory_mb=256), NIGHT)
    scheduler.schedule(NIGHT)
    scheduler.complete_task(task_id, NIGHT + 1800.0)
    assert scheduler.ledger.as_dict() == {"h": {"compute_hours": 0.5, "charging_hours": 0.5,
                                                "tasks": 1}}
    assert scheduler.get_system_status()["contributions"]["h"]["compute_hours"] == 0.5
