"""Parallel stages: CPU scaling, bytes per message, and the cost beside a plain Consumer.

1. A pure-Python process() of about 2 ms per message: ParallelConsumer throughput
   with process_number 1 and 2 (target: 2 workers >= 1.7x one worker).
2. A Processor holding 50 MB beside an empty one: bytes sent to the workers per
   message (target: the same for both, i.e. independent of the Processor).
3. A trivial process(): ParallelConsumer (2 workers) beside a plain Consumer on
   1 KiB msgpack messages (reported as a ratio; IPC is the price).

Every figure is measured from the stage's first input to its last acknowledged
output, in the same run against the same broker.

    python -m bench.parallel [--cpu-messages N] [--trivial-messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from bench._common import broker, create_topics, emit, fresh, prefill
from fogverse import Consumer
from fogverse.parallel import ParallelConsumer, Processor
from fogverse.parallel.pool import PoolStats

CPU_MS = 2.0
BIG_BYTES = 50 * 1024 * 1024


def burn(iterations: int) -> int:
    """Pure-Python arithmetic: holds the GIL the whole time, like real Python work."""
    x = 0
    for i in range(iterations):
        x = (x * 31 + i) % 1_000_003
    return x


def calibrate(target_ms: float) -> int:
    """Iterations of burn() that take ``target_ms`` on this machine."""
    iterations = 20_000
    while True:
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            burn(iterations)
            samples.append(time.perf_counter() - started)
        took = statistics.median(samples) * 1000
        if took > target_ms / 4:
            return max(1, int(iterations * target_ms / took))
        iterations *= 4


class Burn(Processor):
    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def process(self, data: Any) -> Any:
        burn(self.iterations)
        return data


class Weighty(Processor):
    """Holds ``size`` bytes, like a model's weights; does nothing per message."""

    def __init__(self, size: int) -> None:
        self.weights = os.urandom(size)

    def process(self, data: Any) -> Any:
        return data


class PassThrough(Consumer):
    """The identity stage: decode, process (nothing), encode, send."""


def _throughput(stage: Consumer, count: int) -> float:
    asyncio.run(stage.run())
    first, last = stage.stats.first_input_at, stage.stats.last_output_at
    assert first is not None and last is not None, "the stage saw no input"
    assert stage.stats.acked == count, f"only {stage.stats.acked} of {count} acknowledged"
    return count / (last - first)


def parallel_run(servers: str, source: str, count: int, processor: Processor,
                 workers: int) -> tuple[float, PoolStats]:
    stage = ParallelConsumer(
        processor=processor, process_number=workers, consumer_topic=source,
        producer_topic=fresh("bench-par-out"), consumer_servers=servers,
        group_id=fresh("bench-par"), max_messages=count, heartbeat=False,
    )
    rate = _throughput(stage, count)
    assert stage.pool_stats is not None
    return rate, stage.pool_stats


def plain_run(servers: str, source: str, count: int) -> float:
    stage = PassThrough(consumer_topic=source, producer_topic=fresh("bench-plain-out"),
                        consumer_servers=servers, group_id=fresh("bench-plain"),
                        max_messages=count, heartbeat=False)
    return _throughput(stage, count)


def cpu_scaling(servers: str, count: int, rounds: int) -> dict[str, Any]:
    iterations = calibrate(CPU_MS)
    source = fresh("bench-cpu-in")
    create_topics(servers, source, partitions=2)
    prefill(servers, source, count)
    one: list[float] = []
    two: list[float] = []
    for round_ in range(rounds):
        # Alternate which goes first, so a slow spell on this shared machine
        # does not always land on the same side.
        order = (1, 2) if round_ % 2 == 0 else (2, 1)
        for workers in order:
            rate = parallel_run(servers, source, count, Burn(iterations), workers)[0]
            (one if workers == 1 else two).append(rate)
        print(f"cpu round {round_ + 1}: 1 worker {one[-1]:,.0f} msg/s, "
              f"2 workers {two[-1]:,.0f} msg/s ({two[-1] / one[-1]:.2f}x)", flush=True)
    # Best of several: other load only ever slows a run down, so the best run of
    # each is the closest to what the machine can do.
    best_one, best_two = max(one), max(two)
    print(f"cpu: {CPU_MS} ms of pure Python per message ({iterations} iterations); "
          f"best 1 worker {best_one:,.0f} msg/s, 2 workers {best_two:,.0f} msg/s, "
          f"speedup {best_two / best_one:.2f}x (target >= 1.7x on {os.cpu_count()} cores)")
    return {"cpu_ms_per_message": CPU_MS, "cpu_msgs_per_s_1_worker": round(best_one),
            "cpu_msgs_per_s_2_workers": round(best_two),
            "cpu_speedup": round(best_two / best_one, 3), "cpu_target_speedup": 1.7,
            "cpu_speedup_per_round": [round(b / a, 2) for a, b in zip(one, two, strict=True)],
            "load_average_1m": round(os.getloadavg()[0], 2)}


def bytes_per_message(servers: str, count: int) -> dict[str, Any]:
    source = fresh("bench-size-in")
    create_topics(servers, source)
    prefill(servers, source, count)
    per_message, at_start = {}, {}
    for size in (0, BIG_BYTES):
        _, stats = parallel_run(servers, source, count, Weighty(size), 2)
        per_message[size] = stats.job_bytes_sent / stats.jobs_sent
        at_start[size] = stats.init_bytes_sent
        print(f"size: Processor holding {size / 2**20:.0f} MiB: {per_message[size]:,.0f} "
              f"bytes per message to workers, {at_start[size]:,} bytes once at start "
              f"(2 workers)", flush=True)
    independent = per_message[0] == per_message[BIG_BYTES]
    print(f"size: bytes per message {'do not depend' if independent else 'DEPEND'} on the "
          "Processor's size (target: independent)")
    return {"bytes_per_msg_small_processor": round(per_message[0], 1),
            "bytes_per_msg_50mb_processor": round(per_message[BIG_BYTES], 1),
            "processor_bytes_once_per_worker": at_start[BIG_BYTES] // 2,
            "bytes_per_msg_independent_of_processor": independent}


def trivial_cost(servers: str, count: int, rounds: int) -> dict[str, Any]:
    source = fresh("bench-triv-in")
    create_topics(servers, source, partitions=2)
    prefill(servers, source, count)
    plain, parallel = [], []
    for round_ in range(rounds):
        plain.append(plain_run(servers, source, count))
        parallel.append(parallel_run(servers, source, count, Weighty(0), 2)[0])
        print(f"trivial round {round_ + 1}: Consumer {plain[-1]:,.0f} msg/s, "
              f"ParallelConsumer {parallel[-1]:,.0f} msg/s", flush=True)
    best_plain, best_parallel = max(plain), max(parallel)
    ratio = best_parallel / best_plain
    print(f"trivial: best Consumer {best_plain:,.0f} msg/s, ParallelConsumer (2 workers) "
          f"{best_parallel:,.0f} msg/s, ratio {ratio:.2f}")
    return {"trivial_consumer_msgs_per_s": round(best_plain),
            "trivial_parallel_msgs_per_s": round(best_parallel),
            "trivial_ratio": round(ratio, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpu-messages", type=int, default=1200)
    parser.add_argument("--size-messages", type=int, default=2000)
    parser.add_argument("--trivial-messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    with broker() as servers:
        result: dict[str, Any] = {"bench": "parallel", "cores": os.cpu_count()}
        result.update(cpu_scaling(servers, args.cpu_messages, args.rounds))
        result.update(bytes_per_message(servers, args.size_messages))
        result.update(trivial_cost(servers, args.trivial_messages, max(2, args.rounds // 2)))
    emit(result)


if __name__ == "__main__":
    main()
