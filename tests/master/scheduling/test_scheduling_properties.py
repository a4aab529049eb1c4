"""Properties over random fleets and random histories of submits, passes and outcomes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from master.scheduling import (
    Capacity,
    Policies,
    Scheduler,
    TaskPriority,
    TaskSpec,
    TaskState,
    TaskType,
    ThermalState,
)

capacities = st.builds(
    Capacity,
    cpu_cores=st.integers(1, 16),
    cpu_utilization=st.sampled_from([0.0, 0.1, 0.5, 0.75, 0.9]),
    memory_mb=st.sampled_from([1024, 4096, 8192]),
    memory_used_mb=st.sampled_from([0, 512, 1024]),
    gpu_available=st.booleans(),
    battery_powered=st.booleans(),
    battery_percent=st.sampled_from([None, 10.0, 35.0, 60.0, 90.0]),
    is_charging=st.booleans(),
    thermal_state=st.sampled_from(list(ThermalState)),
    network_bandwidth_mbps=st.sampled_from([10.0, 100.0]),
)
specs = st.builds(
    TaskSpec,
    task_type=st.sampled_from(list(TaskType)),
    priority=st.sampled_from(list(TaskPriority)),
    cpu_millicores=st.sampled_from([250, 500, 1000, 2000, 4000]),
    memory_mb=st.sampled_from([128, 512, 2048]),
    requires_gpu=st.booleans(),
    estimated_duration=st.sampled_from([10.0, 60.0, 600.0]),
    input_size_mb=st.sampled_from([0.0, 50.0]),
    max_retries=st.integers(0, 2),
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), specs),
        st.tuples(st.just("schedule"), st.floats(0.0, 50.0)),
        st.tuples(st.just("complete"), st.integers(0, 10_000)),
        st.tuples(st.just("fail"), st.integers(0, 10_000)),
        st.tuples(st.just("cancel"), st.integers(0, 10_000)),
    ),
    max_size=60,
)


def replay(fleet: list[Capacity], history: list[tuple[str, Any]], strategy: str = "score",
           check: bool = True) -> list[tuple[str, str, int]]:
    scheduler = Scheduler(Policies(default_strategy=strategy))
    for i, capacity in enumerate(fleet):
        scheduler.register_node(f"n{i}", capacity)
    now = 0.0
    placements: list[tuple[str, str, int]] = []
    for op, arg in history:
        if op == "submit":
            scheduler.submit(arg, now)
        elif op == "schedule":
            now += arg
            result = scheduler.schedule(now)
            placements += [(a.task_id, a.node_id, a.attempt) for a in result.assigned]
            if check and strategy == "score":
                assert_no_waiting_task_fits(scheduler)
                assert_assigned_in_queue_order(scheduler, [a.task_id for a in result.assigned])
        else:
            running = sorted(t for t, r in scheduler.tasks.items()
                             if r.state is TaskState.ASSIGNED)
            if running:
                task_id = running[arg % len(running)]
                {"complete": scheduler.complete_task, "fail": scheduler.fail_task,
                 "cancel": scheduler.cancel_task}[op](task_id, now)
        if check:
            assert_never_over_allocated(scheduler)
    return placements


def assert_never_over_allocated(scheduler: Scheduler) -> None:
    limit = scheduler.policies["max_concurrent_tasks_per_node"]
    for node in scheduler.nodes.values():
        cap = node.capacity
        running = list(node.active.values())
        # Released exactly once: what is reserved is exactly what runs there.
        assert node.reserved_mc == sum(r.spec.cpu_millicores for r in running)
        assert node.reserved_mem == sum(r.spec.memory_mb for r in running)
        assert all(r.state is TaskState.ASSIGNED and r.node_id == node.node_id for r in running)
        assert len(running) <= limit
        assert node.reserved_mc / 1000 <= cap.available_cpu_cores + 1e-9
        assert node.reserved_mem <= cap.available_memory_mb


def assert_no_waiting_task_fits(scheduler: Scheduler) -> None:
    """After a pass, a queued task found no node: none is free for it now either."""
    long_seconds = scheduler.policies["long_task_seconds"]
    for record in scheduler.tasks.values():
        if record.state is not TaskState.PENDING or record.tried:
            continue
        spec = record.spec
        long_task = spec.estimated_duration > long_seconds
        free = [n.node_id for n in scheduler.nodes.values()
                if n.listed and n.fits(spec) and (n.long_ok or not long_task)]
        assert free == [], (record.task_id, free)


def assert_assigned_in_queue_order(scheduler: Scheduler, assigned: list[str]) -> None:
    keys = [(-scheduler.tasks[t].spec.priority.value, scheduler.tasks[t].submitted_at,
             scheduler.tasks[t].seq) for t in assigned]
    retried = [scheduler.tasks[t].attempts > 1 for t in assigned]
    fresh = [k for k, r in zip(keys, retried, strict=True) if not r]
    assert fresh == sorted(fresh)


@settings(max_examples=150, deadline=None)
@given(st.lists(capacities, min_size=1, max_size=8), ops)
def test_invariants_hold_through_any_history(fleet: list[Capacity],
                                             history: list[tuple[str, Any]]) -> None:
    replay(fleet, history)


@settings(max_examples=60, deadline=None)
@given(st.lists(capacities, min_size=1, max_size=8), ops,
       st.sampled_from(["round_robin", "least_loaded", "latency_optimized", "power_aware",
                        "deadline_energy"]))
def test_every_strategy_keeps_nodes_within_their_means(
        fleet: list[Capacity], history: list[tuple[str, Any]], strategy: str) -> None:
    replay(fleet, history, strategy)


@settings(max_examples=80, deadline=None)
@given(st.lists(capacities, min_size=1, max_size=8), ops)
def test_same_inputs_same_placements(fleet: list[Capacity],
                                     history: list[tuple[str, Any]]) -> None:
    assert replay(fleet, history, check=False) == replay(fleet, history, check=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(capacities, min_size=1, max_size=12),
       st.lists(specs, min_size=1, max_size=12), specs)
def test_the_index_picks_what_a_full_scan_picks(fleet: list[Capacity], load: list[TaskSpec],
                                               probe: TaskSpec) -> None:
    scheduler = Scheduler()
    for i, capacity in enumerate(fleet):
        scheduler.register_node(f"n{i}", capacity)
    for spec in load:
        scheduler.submit(spec, 0.0)
    scheduler.schedule(0.0)
    policies = scheduler.policies.current
    long_task = probe.estimated_duration > policies.long_task_seconds
    scored = [(n.task_score(probe, policies.large_input_mb), -n.reg, n.node_id)
              for n in scheduler.nodes.values()
              if n.listed and n.fits(probe) and (n.long_ok or not long_task)]
    expected = max(scored)[2] if scored else None
    assert scheduler.choose_node(probe, 0.0) == expected
