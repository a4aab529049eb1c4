"""Lock round trips beside a raw TCP request/response loop doing the same exchanges.

One lock round trip is ``async with lock.hold(key): pass``: connect, read the
service's hello, acquire, release, close. The baseline does exactly those
exchanges against a bare asyncio server in its own process that answers each
msgpack frame at once, with no lock table, no leases and no renewal thread:
the fastest honest way to pay for the same connections and round trips on
loopback. Both servers run in child processes, like the Master would; each
figure is measured alone (one client at a time) and with 50 clients at once,
each on its own key.

    python -m bench.lock [--rounds N] [--clients C]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from bench._common import emit
from fogverse.lock import DistributedLock, encode_frame, read_frame

LOCK_SERVER = """
import asyncio
from workers.distributed_lock import DistributedLockWorker

async def main() -> None:
    async with DistributedLockWorker(port=0, max_connections=1024) as worker:
        print(worker.port, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""

ECHO_SERVER = """
import asyncio
from fogverse.lock import encode_frame, read_frame

async def serve(reader, writer):
    writer.write(encode_frame({"op": "hello", "version": 2, "auth": False, "idle": 60}))
    while (request := await read_frame(reader)) is not None:
        writer.write(encode_frame({"id": request.get("id"), "ok": True}))
        await writer.drain()
    writer.close()

async def main() -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

RoundTrip = Callable[[str], Awaitable[None]]


@contextmanager
def server(script: str) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def lock_round_trip(port: int) -> RoundTrip:
    lock = DistributedLock("127.0.0.1", port)

    async def once(key: str) -> None:
        async with lock.hold(key, lease=10.0):
            pass

    return once


def raw_round_trip(port: int) -> RoundTrip:
    async def once(key: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await read_frame(reader)
        for request_id, op in enumerate(("acquire", "release"), start=1):
            writer.write(encode_frame({"op": op, "id": request_id, "key": key}))
            await writer.drain()
            await read_frame(reader)
        writer.close()
        await writer.wait_closed()

    return once


async def measure(once: RoundTrip, clients: int, rounds: int) -> list[float]:
    """Milliseconds per round trip, ``clients`` at once, ``rounds`` each."""
    samples: list[float] = []

    async def client(n: int) -> None:
        for _ in range(rounds):
            started = time.perf_counter()
            await once(f"bench-{n}")
            samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return samples


def percentile(samples: list[float], q: int) -> float:
    return round(statistics.quantiles(samples, n=100, method="inclusive")[q - 1], 3)


async def run(rounds: int, clients: int) -> dict[str, float]:
    result: dict[str, float] = {}
    with server(LOCK_SERVER) as lock_port, server(ECHO_SERVER) as echo_port:
        for name, once in (("", lock_round_trip(lock_port)),
                           ("baseline_", raw_round_trip(echo_port))):  # fmt: skip
            await measure(once, 1, 50)  # warm up: imports, the renewal thread
            alone = await measure(once, 1, rounds)
            crowd = await measure(once, clients, max(1, rounds // clients * 4))
            result[f"{name}p50_ms"] = percentile(alone, 50)
            result[f"{name}p99_ms"] = percentile(alone, 99)
            result[f"{name}p50_ms_{clients}_clients"] = percentile(crowd, 50)
            result[f"{name}p99_ms_{clients}_clients"] = percentile(crowd, 99)
            print(f"{name or 'lock_'}round trip: alone p50 {result[f'{name}p50_ms']} ms,"
                  f" p99 {result[f'{name}p99_ms']} ms; {clients} clients p50"
                  f" {result[f'{name}p50_ms_{clients}_clients']} ms, p99"
                  f" {result[f'{name}p99_ms_{clients}_clients']} ms", flush=True)  # fmt: skip
    result["p99_ratio"] = round(result["p99_ms"] / result["baseline_p99_ms"], 2)
    result[f"p99_ratio_{clients}_clients"] = round(
        result[f"p99_ms_{clients}_clients"] / result[f"baseline_p99_ms_{clients}_clients"], 2
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    emit({"bench": "lock", "clients": args.clients, "rounds": args.rounds,
          **asyncio.run(run(args.rounds, args.clients))})  # fmt: skip


if __name__ == "__main__":
    main()
