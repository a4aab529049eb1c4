"""get_system_status in the fog-coordinator seed's shape, with our additions."""

from __future__ import annotations

from sched_helpers import desktop, phone, task

from master.scheduling import Scheduler, TaskType, ThermalState


def test_status_shape_and_counts() -> None:
    scheduler = Scheduler(coordinator_id="master-1")
    scheduler.register_node("desk", desktop())
    scheduler.register_node("charging", phone(is_charging=True))
    scheduler.register_node("flat", phone(battery_percent=12.0))
    scheduler.register_node("hot", desktop(thermal_state=ThermalState.HOT))
    done = scheduler.submit(task(task_type=TaskType.EMBEDDING), 0.0)
    scheduler.submit(task(task_type=TaskType.TRAINING), 0.0)
    scheduler.submit(task(cpu_millicores=64_000), 0.0)
    scheduler.schedule(0.0)
    scheduler.complete_task(done, 36.0)
    status = scheduler.get_system_status()
    assert set(status) == {"coordinator_id", "nodes", "clusters", "tasks", "statistics",
                           "contributions", "policies"}
    assert status["coordinator_id"] == "master-1"
    nodes = status["nodes"]
    assert nodes["total"] == 4
    assert nodes["by_state"] == {"active": 1, "idle": 1, "charging": 1,
                                 "battery_below_minimum": 1, "thermal": 1}
    capacity = nodes["total_compute_capacity"]
    assert capacity["cpu_cores"] == 8 + 4 + 4 + 8
    assert capacity["memory_gb"] == (16384 * 2 + 6144 * 2) / 1024
    tasks = status["tasks"]
    assert (tasks["pending"], tasks["active"], tasks["completed"], tasks["failed"]) == (0, 1, 1, 1)
    assert tasks["by_type"]["embedding"]["completed"] == 1
    assert tasks["by_type"]["training"]["assigned"] == 1
    assert tasks["by_type"]["inference"]["failed"] == 1
    assert status["statistics"]["total_compute_hours"] == 0.01
    assert status["policies"]["battery_minimum_percent"] == 30.0
