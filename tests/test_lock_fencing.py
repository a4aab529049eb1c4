"""Fencing: a holder that stalls past its lease is refused and knows it, with real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from fogverse.lock import DistributedLock, LockLostError, LockToken, encode_frame, read_frame
from workers.distributed_lock import DistributedLockWorker

# Writes a line per side effect, each guarded by the token, stamped with the
# system-wide monotonic clock so the parent can place it in time.
WRITER_SCRIPT = """
import asyncio, sys, time
from fogverse.lock import DistributedLock, LockLostError

async def main() -> None:
    port, key, lease = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    try:
        async with DistributedLock("127.0.0.1", port).hold(key, lease=lease) as token:
            print("held", token.fence, flush=True)
            while token.valid():
                print("write", token.fence, time.monotonic(), flush=True)
                await asyncio.sleep(0.01)
            print("invalid", flush=True)
            try:
                token.check()
            except LockLostError as exc:
                print("check-raised", str(exc).replace(chr(10), " "), flush=True)
    except LockLostError:
        print("refused", flush=True)

asyncio.run(main())
"""

# Blocks its own event loop for several leases while holding the lock.
BLOCKER_SCRIPT = """
import asyncio, sys, time
from fogverse.lock import DistributedLock

async def main() -> None:
    port, key, lease, block = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    async with DistributedLock("127.0.0.1", port).hold(key, lease=lease) as token:
        print("held", flush=True)
        time.sleep(block)  # a synchronous stretch: the loop cannot run
        print("valid" if token.valid() else "lost", flush=True)
    print("released", flush=True)

asyncio.run(main())
"""


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[DistributedLockWorker]:
    async with DistributedLockWorker(port=0, default_lease=5.0, max_lease=60.0) as worker:
        yield worker


def client(worker: DistributedLockWorker) -> DistributedLock:
    return DistributedLock("127.0.0.1", worker.port)


def signal_child(proc: asyncio.subprocess.Process, sig: int) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


async def spawn(script: str, *args: object) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *map(str, args), stdout=subprocess.PIPE
    )


async def line(proc: asyncio.subprocess.Process) -> list[str]:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()


async def test_every_grant_gets_a_larger_fence_and_a_token_valid_only_inside(
    server: DistributedLockWorker,
) -> None:
    lock = client(server)
    fences: list[int] = []
    tokens: list[LockToken] = []
    for key in ["a", "b", "a", "a", "b"]:
        async with lock.hold(key) as token:
            assert token.valid() and token.key == key
            lock.check(token)
            assert server.locks()[key].fence == token.fence
            fences.append(token.fence)
            tokens.append(token)
    assert fences == sorted(set(fences))
    assert not any(t.valid() for t in tokens)
    with pytest.raises(LockLostError, match="fence"):
        tokens[0].check()


async def test_a_restarted_service_hands_out_larger_fences() -> None:
    async with DistributedLockWorker(port=0) as first, client(first).hold("k") as before:
        pass
    async with DistributedLockWorker(port=0) as second, client(second).hold("k") as after:
        assert after.fence > before.fence


async def test_a_paused_holder_is_refused_and_stops_writing(
    server: DistributedLockWorker,
) -> None:
    lease = 0.6
    proc = await spawn(WRITER_SCRIPT, server.port, "k", lease)
    try:
        held, old_fence = await line(proc)
        assert held == "held"
        signal_child(proc, signal.SIGSTOP)
        async with client(server).hold("k", timeout=30) as token:
            granted_seen = time.monotonic()
            assert token.fence > int(old_fence)
            resumed = time.monotonic()
            signal_child(proc, signal.SIGCONT)
            assert proc.stdout is not None
            rest = (await asyncio.wait_for(proc.stdout.read(), 30)).decode().splitlines()
            # The new holder kept the key throughout the stale holder's wake-up.
            assert token.valid()
    finally:
        signal_child(proc, signal.SIGCONT)
        signal_child(proc, signal.SIGKILL)
        await proc.wait()
    writes = [float(r.split()[2]) for r in rest if r.startswith("write")]
    # No write after the stale holder woke up, and none once the new holder had the key.
    assert all(at < resumed for at in writes)
    assert all(at < granted_seen for at in writes)
    tail = [r for r in rest if not r.startswith("write")]
    assert tail[0] == "invalid"
    assert tail[1].startswith("check-raised") and f"fence {old_fence}" in tail[1]
    assert tail[2] == "refused"


async def test_a_holder_whose_loop_is_blocked_keeps_the_lock(
    server: DistributedLockWorker,
) -> None:
    lease = 0.5
    proc = await spawn(BLOCKER_SCRIPT, server.port, "k", lease, 6 * lease)
    try:
        assert await line(proc) == ["held"]
        # Asked while the holder's loop is blocked: granted only after it releases.
        async with client(server).hold("k", timeout=30):
            assert proc.stdout is not None
            before = (await asyncio.wait_for(proc.stdout.read(), 30)).decode().split()
    finally:
        signal_child(proc, signal.SIGKILL)
        await proc.wait()
    assert before == ["valid", "released"]


class Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, worker: DistributedLockWorker) -> Raw:
        raw = cls(*await asyncio.open_connection("127.0.0.1", worker.port))
        hello = await read_frame(raw.reader)
        assert hello is not None and hello["op"] == "hello"
        return raw

    async def call(self, **message: object) -> dict[str, object]:
        self.writer.write(encode_frame(dict(message)))
        reply = await asyncio.wait_for(read_frame(self.reader), 20)
        assert reply is not None
        return reply

    def close(self) -> None:
        self.writer.close()


async def test_the_service_refuses_renew_and_release_with_a_stale_fence(
    server: DistributedLockWorker,
) -> None:
    stale = await Raw.connect(server)
    first = await stale.call(op="acquire", id=1, key="k", lease=0.2)
    async with client(server).hold("k", timeout=20) as token:
        assert token.fence > first["fence"]  # type: ignore[operator]
        for op in ("renew", "release"):
            reply = await stale.call(
                op=op, id=2, key="k", token=first["token"], fence=first["fence"]
            )
            assert reply["error"] == "stale"
            assert f"fence {first['fence']}" in str(reply["message"])
        assert server.locks()["k"].fence == token.fence
    stale.close()
