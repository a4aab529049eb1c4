"""How fast the scheduling core places tasks, against the seed's own loop.

100,000 tasks go onto 10,000 nodes (desktops, laptops, phones, Jetsons with
mixed load, batteries, charging and thermal states) with the default
strategy, in 200 rounds: each round submits 500 tasks, runs one scheduling
pass, withdraws what found no node, finishes its 500 oldest running tasks (more
if over 15,000 run), and takes 100 fresh capacity reports. Timed: every scheduler call.

The reference is a direct re-implementation of the fog-coordinator seed's
loop: sort the queue by priority and age, then for each task scan every node,
check resources, GPU, the concurrent-task limit and the mobile policies, score
each suitable node and take the best. It counts active tasks per node once per
task (the seed recounts them for every node, which would be slower still). It
is far too slow for the whole run, so on 10 sampled rounds it decides the
first 60 tasks of that round from the same state as the core, and the
placements must be identical.

    python -m bench.scheduler
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import replace
from typing import Any

from bench._common import emit
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

NODES = 10_000
TASKS = 100_000
ROUND = 500
RUNNING_CAP = 15_000
REPORTS_PER_ROUND = 100
SAMPLED_ROUNDS = 10
SAMPLE_TASKS = 60
SEED = 20260612


def make_node(rng: random.Random) -> Capacity:
    kind = rng.choices(("desktop", "laptop", "phone", "jetson"), (20, 25, 45, 10))[0]
    cores = {"desktop": 16, "laptop": 8, "phone": 8, "jetson": 6}[kind]
    memory = {"desktop": 32768, "laptop": 16384, "phone": 8192, "jetson": 8192}[kind]
    battery = kind in ("laptop", "phone")
    return Capacity(
        cpu_cores=cores,
        cpu_utilization=round(rng.uniform(0.0, 0.7), 3),
        memory_mb=memory,
        memory_used_mb=rng.randrange(0, memory // 2, 64),
        gpu_available=kind in ("jetson",) or (kind == "desktop" and rng.random() < 0.3),
        gpu_memory_mb=8192 if kind != "phone" else 0,
        battery_powered=battery,
        battery_percent=float(rng.randrange(5, 101)) if battery else None,
        is_charging=battery and rng.random() < 0.35,
        thermal_state=rng.choices(list(ThermalState), (70, 18, 5, 2, 5))[0],
        cpu_temperature_c=float(rng.randrange(30, 75)) if rng.random() < 0.5 else None,
        network_bandwidth_mbps=float(rng.choice((20, 50, 100, 300, 1000))),
        network_latency_ms=float(rng.randrange(2, 120)),
    )


def make_task(rng: random.Random) -> TaskSpec:
    return TaskSpec(
        task_type=rng.choice(list(TaskType)),
        priority=rng.choices(list(TaskPriority), (30, 45, 20, 5))[0],
        cpu_millicores=rng.choice((250, 500, 1000, 1000, 2000, 4000)),
        memory_mb=rng.choice((256, 512, 512, 1024, 2048, 4096)),
        requires_gpu=rng.random() < 0.05,
        estimated_duration=float(rng.choice((10, 30, 60, 120, 600, 1800))),
        input_size_mb=rng.choice((0.5, 2.0, 8.0, 50.0)) if rng.random() < 0.6 else 0.0,
    )


def drift(cap: Capacity, rng: random.Random) -> Capacity:
    """A fresh report: load moves, batteries drain or charge, chargers come and go."""
    battery = cap.battery_percent
    charging = cap.is_charging
    if cap.battery_powered and battery is not None:
        charging = rng.random() < 0.35
        battery = min(100.0, max(5.0, battery + rng.choice((-7.0, -3.0, 2.0, 6.0))))
    return replace(cap, cpu_utilization=round(rng.uniform(0.0, 0.7), 3), battery_percent=battery,
                   is_charging=charging,
                   thermal_state=rng.choices(list(ThermalState), (70, 18, 5, 2, 5))[0])


# -- the reference: the seed's loop, written out -----------------------------------------

_THERMAL_FACTOR = {"normal": 1.0, "warm": 0.8, "hot": 0.4, "critical": 0.1}
_THERMAL_PENALTY = {"normal": 1.0, "warm": 0.9, "hot": 0.5, "critical": 0.1}


def reference_score(cap: Capacity, used_mc: int, used_mem: int, task: TaskSpec) -> float:
    free_cpu = cap.cpu_cores * (1.0 - cap.cpu_utilization) - used_mc / 1000
    free_mem = (cap.memory_mb - cap.memory_used_mb) - used_mem
    cpu_score = max(0.0, free_cpu) / max(1, cap.cpu_cores)
    memory_score = max(0.0, free_mem) / max(1, cap.memory_mb)
    power = 1.0
    if cap.battery_powered and cap.battery_percent is not None:
        if cap.battery_percent < 20:
            power = 0.2
        elif cap.battery_percent < 50:
            power = 0.6
        elif cap.is_charging:
            power = 1.2
    thermal = cap.thermal_state.value
    score = min(1.0, (cpu_score + memory_score) / 2 * power * _THERMAL_FACTOR.get(thermal, 0.5))
    if cap.battery_powered and cap.is_charging:
        score *= 1.5
    if not cap.battery_powered:
        score *= 1.2
    score *= _THERMAL_PENALTY.get(thermal, 0.5)
    if task.requires_gpu and cap.gpu_available:
        score *= 1.3
    if task.input_size_mb > 10:
        score *= 0.5 + 0.5 * min(1.0, cap.network_bandwidth_mbps / 100.0)
    return score


def reference_allows(cap: Capacity, task: TaskSpec, policies: Policies) -> bool:
    battery = cap.battery_percent
    if cap.battery_powered and battery is not None and (
            battery < policies.battery_minimum_percent and not cap.is_charging):
        return False
    if cap.thermal_state.value in ("hot", "critical"):
        return False
    if cap.cpu_temperature_c is not None and (
            cap.cpu_temperature_c >= policies.thermal_throttle_threshold):
        return False
    return not (policies.prefer_charging_nodes and task.estimated_duration > 300
                and cap.battery_powered and not cap.is_charging and battery is not None
                and battery < 70)


def reference_round(caps: dict[str, Capacity], running: dict[str, tuple[TaskSpec, str]],
                    queue: list[tuple[str, TaskSpec]], policies: Policies,
                    ) -> tuple[dict[str, str | None], float]:
    """The seed's pass over ``queue`` (already in priority order); returns placements and time."""
    used_mc: Counter[str] = Counter()
    used_mem: Counter[str] = Counter()
    active = [node for _, node in running.values()]
    for spec, node in running.values():
        used_mc[node] += spec.cpu_millicores
        used_mem[node] += spec.memory_mb
    out: dict[str, str | None] = {}
    started = time.perf_counter()
    for task_id, task in queue:
        counts = Counter(active)
        suitable: list[tuple[str, float]] = []
        for node_id, cap in caps.items():
            mc, mem = used_mc[node_id], used_mem[node_id]
            if (cap.cpu_cores * (1.0 - cap.cpu_utilization) - mc / 1000 < task.cpu_cores
                    or (cap.memory_mb - cap.memory_used_mb) - mem < task.memory_mb):
                continue
            if task.requires_gpu and not cap.gpu_available:
                continue
            if counts[node_id] >= policies.max_concurrent_tasks_per_node:
                continue
            if not reference_allows(cap, task, policies):
                continue
            suitable.append((node_id, reference_score(cap, mc, mem, task)))
        if not suitable:
            out[task_id] = None
            continue
        suitable.sort(key=lambda pair: pair[1], reverse=True)
        chosen = suitable[0][0]
        out[task_id] = chosen
        active.append(chosen)
        used_mc[chosen] += task.cpu_millicores
        used_mem[chosen] += task.memory_mb
    return out, time.perf_counter() - started


# -- the run -----------------------------------------------------------------------------

def run() -> dict[str, Any]:
    rng = random.Random(SEED)
    policies = Policies()
    caps = {f"node-{i:05d}": make_node(rng) for i in range(NODES)}
    specs = [make_task(rng) for _ in range(TASKS)]
    scheduler = Scheduler(policies)
    ours = 0.0
    t = time.perf_counter()
    for node_id, cap in caps.items():
        scheduler.register_node(node_id, cap)
    registration = time.perf_counter() - t
    running: dict[str, tuple[TaskSpec, str]] = {}
    order: deque[str] = deque()
    sampled = set(range(7, TASKS // ROUND, TASKS // ROUND // SAMPLED_ROUNDS))
    ref_time = 0.0
    ref_tasks = 0
    mismatches = 0
    placed = 0
    node_ids = list(caps)
    for rnd in range(TASKS // ROUND):
        now = rnd * 0.01  # well inside every timeout: tasks end when the bench says
        batch = specs[rnd * ROUND:(rnd + 1) * ROUND]
        t = time.perf_counter()
        ids = [scheduler.submit(spec, now) for spec in batch]
        result = scheduler.schedule(now)
        ours += time.perf_counter() - t
        if rnd in sampled:
            queue = sorted(zip(ids, batch, strict=True),
                           key=lambda p: (-p[1].priority.value, p[0]))[:SAMPLE_TASKS]
            expected, took = reference_round(caps, running, queue, policies)
            ref_time += took
            ref_tasks += len(queue)
            got = {a.task_id: a.node_id for a in result.assigned}
            mismatches += sum(got.get(task_id) != node for task_id, node in expected.items())
        for a in result.assigned:
            running[a.task_id] = (scheduler.tasks[a.task_id].spec, a.node_id)
            order.append(a.task_id)
        placed += len(result.assigned)
        left = [i for i in ids if scheduler.tasks[i].state is TaskState.PENDING]
        done = []
        while order and (len(order) > RUNNING_CAP or len(done) < ROUND):
            done.append(order.popleft())
        reports = []
        for _ in range(REPORTS_PER_ROUND):
            node_id = rng.choice(node_ids)
            caps[node_id] = drift(caps[node_id], rng)
            reports.append(node_id)
        t = time.perf_counter()
        for task_id in left:
            scheduler.cancel_task(task_id, now)
        for task_id in done:
            scheduler.complete_task(task_id, now + 0.005)
        for node_id in reports:
            scheduler.update_node(node_id, caps[node_id], now + 0.005)
        ours += time.perf_counter() - t
        for task_id in done:
            del running[task_id]
    ours_per_task = ours / TASKS
    ref_per_task = ref_time / max(1, ref_tasks)
    print(f"core: {TASKS} tasks onto {NODES} nodes in {ours:.2f}s "
          f"({TASKS / ours:,.0f} decisions/s, {placed} placed); "
          f"registration {registration:.2f}s")
    print(f"seed loop: {ref_tasks} sampled tasks in {ref_time:.2f}s "
          f"({ref_per_task * 1e3:.2f} ms/task); mismatching placements: {mismatches}")
    return {
        "bench": "scheduler",
        "nodes": NODES,
        "tasks": TASKS,
        "placed": placed,
        "decisions_per_s": round(TASKS / ours),
        "decisions_per_s_target": 50_000,
        "reference_ms_per_task": round(ref_per_task * 1e3, 3),
        "core_us_per_task": round(ours_per_task * 1e6, 2),
        "ratio": round(ref_per_task / ours_per_task, 1),
        "ratio_target": 50,
        "sampled_tasks": ref_tasks,
        "identical_placements": mismatches == 0 and ref_tasks > 0,
    }


if __name__ == "__main__":
    emit(run())
