"""The distributed lock: a real TCP server, real clients, real (killed) processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogverse.lock import (
    DistributedLock,
    LockError,
    LockLostError,
    LockTimeoutError,
    encode_frame,
    read_frame,
)
from workers.distributed_lock import DistributedLockWorker

HOLDER_SCRIPT = """
import asyncio, sys
from fogverse.lock import DistributedLock, LockLostError

async def main() -> None:
    port, key, lease, body = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    try:
        async with DistributedLock("127.0.0.1", port).hold(key, lease=lease):
            print("held", flush=True)
            await asyncio.sleep(body)
    except LockLostError:
        print("lost", flush=True)
        return
    print("released", flush=True)

asyncio.run(main())
"""


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[DistributedLockWorker]:
    worker = DistributedLockWorker(port=0, default_lease=5.0, max_lease=60.0)
    async with worker:
        yield worker


def client(worker: DistributedLockWorker) -> DistributedLock:
    return DistributedLock("127.0.0.1", worker.port)


async def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {predicate}"
        await asyncio.sleep(0.02)


def waiting(worker: DistributedLockWorker, key: str) -> int:
    entry = worker.locks().get(key)
    return entry.waiting if entry is not None else 0


class RawClient:
    """Speaks the wire format by hand, to send what a well-behaved client never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.hello: dict[str, Any] | None = None

    @classmethod
    async def connect(cls, worker: DistributedLockWorker) -> RawClient:
        raw = cls(*await asyncio.open_connection("127.0.0.1", worker.port))
        raw.hello = await raw.reply()
        return raw

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def call(self, message: dict[str, Any]) -> dict[str, Any] | None:
        await self.send_bytes(encode_frame(message))
        return await self.reply()

    async def reply(self) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(read_frame(self.reader), 20)
        except (ConnectionError, asyncio.IncompleteReadError):
            return None

    async def close(self) -> None:
        self.writer.close()
        await asyncio.gather(self.writer.wait_closed(), return_exceptions=True)


def signal_child(proc: asyncio.subprocess.Process, sig: int) -> None:
    # Not proc.send_signal: Popen polls (and may reap) the child first, racing
    # asyncio's own waiter, which then reports a bogus exit code.
    # The child watcher may have reaped it a moment before returncode is set.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


async def start_holder(
    worker: DistributedLockWorker, key: str, lease: float, body: float
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER_SCRIPT, str(worker.port), key, str(lease), str(body),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"held\n"
    return proc


# -- mutual exclusion ---------------------------------------------------------


async def test_two_clients_never_hold_the_same_key_together(
    server: DistributedLockWorker,
) -> None:
    inside: list[str] = []
    overlaps = 0
    turns: list[str] = []

    async def worker(name: str) -> None:
        nonlocal overlaps
        lock = client(server)
        for _ in range(15):
            async with lock.hold("partition-topic", lease=2.0, timeout=20):
                inside.append(name)
                overlaps += len(inside) > 1
                turns.append(name)
                await asyncio.sleep(0.003)
                inside.remove(name)

    await asyncio.gather(worker("a"), worker("b"))
    assert overlaps == 0
    assert sorted(turns) == ["a"] * 15 + ["b"] * 15


async def test_each_key_is_its_own_lock(server: DistributedLockWorker) -> None:
    lock = client(server)
    async with lock.hold("topic-a"), lock.hold("topic-b", timeout=5):
        assert set(server.locks()) == {"topic-a", "topic-b"}
    await wait_until(lambda: server.locks() == {})


async def test_a_client_timing_out_leaves_no_trace(server: DistributedLockWorker) -> None:
    holder, other = client(server), client(server)
    async with holder.hold("k"):
        with pytest.raises(LockTimeoutError, match="'k'"):
            async with other.hold("k", timeout=0.2):
                pytest.fail("granted while held")
        await wait_until(lambda: waiting(server, "k") == 0)
    async with other.hold("k", timeout=5):
        pass


async def test_connecting_to_nothing_times_out_or_fails_clearly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(OSError):
        async with DistributedLock("127.0.0.1", free_port).hold("k", timeout=5):
            pass


# -- dead and silent holders --------------------------------------------------


async def test_a_sigkilled_holder_loses_the_lock(server: DistributedLockWorker) -> None:
    proc = await start_holder(server, "k", lease=30.0, body=3600)
    try:
        assert server.locks()["k"].holder is not None
        signal_child(proc, signal.SIGKILL)
        async with client(server).hold("k", timeout=20):
            assert server.locks()["k"].waiting == 0
    finally:
        signal_child(proc, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def test_a_holder_that_stops_renewing_loses_the_lock_after_its_lease(
    server: DistributedLockWorker,
) -> None:
    # A stopped process keeps its socket open but renews nothing: only the lease frees the key.
    proc = await start_holder(server, "k", lease=0.6, body=1.0)
    try:
        signal_child(proc, signal.SIGSTOP)
        async with client(server).hold("k", timeout=20):
            signal_child(proc, signal.SIGCONT)
            assert proc.stdout is not None
            # The woken holder learns it lost the lock instead of believing it still has it.
            assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"lost\n"
    finally:
        signal_child(proc, signal.SIGCONT)
        signal_child(proc, signal.SIGKILL)
        await proc.wait()


async def test_a_raw_client_that_never_renews_loses_the_lock(
    server: DistributedLockWorker,
) -> None:
    raw = await RawClient.connect(server)
    granted = await raw.call({"op": "acquire", "id": 1, "key": "k", "lease": 0.3})
    assert granted is not None and granted["ok"] is True
    async with client(server).hold("k", timeout=20):
        late = await raw.call({"op": "renew", "id": 2, "key": "k", "token": granted["token"]})
        assert late == {"id": 2, "ok": False, "error": "not_held", "message": late["message"]}
    await raw.close()


async def test_renewal_keeps_a_short_lease_alive(server: DistributedLockWorker) -> None:
    holder, other = client(server), client(server)
    async with holder.hold("k", lease=0.3):
        # Several leases pass while another client waits; the holder keeps the key.
        with pytest.raises(LockTimeoutError):
            async with other.hold("k", timeout=1.5):
                pytest.fail("granted while the holder renews")


# -- fairness -----------------------------------------------------------------


async def test_waiters_are_served_in_arrival_order(server: DistributedLockWorker) -> None:
    order: list[str] = []
    release_first = asyncio.Event()

    async def first() -> None:
        async with client(server).hold("k"):
            order.append("first")
            await release_first.wait()

    async def later(name: str) -> None:
        async with client(server).hold("k", timeout=20):
            order.append(name)

    tasks = [asyncio.create_task(first())]
    await wait_until(lambda: order == ["first"])
    for count, name in enumerate(["b", "c", "d", "e"], start=1):
        tasks.append(asyncio.create_task(later(name)))
        await wait_until(lambda count=count: waiting(server, "k") == count)
    release_first.set()
    await asyncio.gather(*tasks)
    assert order == ["first", "b", "c", "d", "e"]


async def test_a_greedy_client_cannot_starve_a_waiter(server: DistributedLockWorker) -> None:
    grants: list[str] = []
    stop = asyncio.Event()

    async def greedy() -> None:
        lock = client(server)
        while not stop.is_set():
            async with lock.hold("k"):
                grants.append("greedy")
                await asyncio.sleep(0.01)

    greedy_task = asyncio.create_task(greedy())
    await wait_until(lambda: len(grants) >= 3)

    async def patient() -> None:
        async with client(server).hold("k", timeout=20):
            grants.append("patient")
            stop.set()

    patient_task = asyncio.create_task(patient())
    await wait_until(lambda: waiting(server, "k") == 1 or "patient" in grants)
    queued_at = len(grants)
    await asyncio.gather(patient_task, greedy_task)
    # Once queued, the patient client is next: the greedy one finishes at most
    # the turn it was already in.
    assert grants.index("patient") <= queued_at
    await wait_until(lambda: server.locks() == {})


# -- bad input ----------------------------------------------------------------


def raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


GOOD = {"op": "acquire", "id": 1, "key": "k", "lease": 1.0}


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"op": "steal", "id": 1}, "unknown_op"),
        ({"id": 1}, "unknown_op"),
        ({**GOOD, "key": 5}, "bad_request"),
        ({**GOOD, "key": ""}, "bad_request"),
        ({**GOOD, "key": "x" * 5000}, "bad_request"),
        ({**GOOD, "lease": "ten"}, "bad_request"),
        ({**GOOD, "lease": -1}, "bad_request"),
        ({**GOOD, "lease": True}, "bad_request"),
        ({**GOOD, "lease": math.nan}, "bad_request"),
        ({**GOOD, "lease": 1e9}, "bad_request"),
        ({**GOOD, "wait": [1]}, "bad_request"),
        ({**GOOD, "id": [1, 2]}, "bad_request"),
        ({"op": "renew", "id": 1, "key": "k", "token": "forged"}, "not_held"),
        ({"op": "release", "id": 1, "key": "k", "token": 7}, "bad_request"),
    ],
)
async def test_malformed_requests_get_an_error_reply(
    server: DistributedLockWorker, request_: dict[str, Any], error: str
) -> None:
    raw = await RawClient.connect(server)
    reply = await raw.call(request_)
    assert reply is not None and reply["ok"] is False and reply["error"] == error
    assert isinstance(reply["message"], str)
    # The same connection still works afterwards.
    assert await raw.call({"op": "ping", "id": 9}) == {"id": 9, "ok": True}
    await raw.close()


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff" * 64,  # read as an absurd frame length
        struct.pack(">I", 0),
        struct.pack(">I", 10) + b"abc",  # a frame that never finishes (then EOF)
        b"\x00\x00",  # half a header
        raw_frame(b"\xc1\xc1\xc1"),  # msgpack's reserved byte
        encode_frame({"op": "ping", "id": 1})[:-1] + b"\xc1",
        raw_frame(msgpack.packb([1])),
        raw_frame(msgpack.packb({1: 2})),
        raw_frame(b"\xa2\xff\xfe"),  # a str that is not UTF-8
    ],
)
async def test_garbage_never_takes_the_server_down(
    server: DistributedLockWorker, payload: bytes
) -> None:
    raw = await RawClient.connect(server)
    await raw.send_bytes(payload)
    raw.writer.write_eof()
    reply = await raw.reply()
    assert reply is None or (
        reply["ok"] is False and reply["error"] in {"bad_frame", "bad_request"}
    )
    await raw.close()
    async with client(server).hold("after-garbage", timeout=5):
        pass


async def test_one_connection_cannot_queue_behind_itself(server: DistributedLockWorker) -> None:
    raw = await RawClient.connect(server)
    assert (await raw.call(GOOD) or {})["ok"] is True
    again = await raw.call({**GOOD, "id": 2})
    assert again is not None and again["error"] == "busy"
    await raw.close()
    await wait_until(lambda: server.locks() == {})


async def test_a_waiter_that_disconnects_leaves_the_queue(server: DistributedLockWorker) -> None:
    async with client(server).hold("k"):
        raw = await RawClient.connect(server)
        await raw.send_bytes(encode_frame({**GOOD, "id": 5}))
        await wait_until(lambda: waiting(server, "k") == 1)
        await raw.close()
        await wait_until(lambda: waiting(server, "k") == 0)
    await wait_until(lambda: server.locks() == {})


async def test_a_server_side_wait_limit_answers_timeout(server: DistributedLockWorker) -> None:
    async with client(server).hold("k"):
        raw = await RawClient.connect(server)
        reply = await raw.call({**GOOD, "wait": 0.1})
        assert reply is not None and reply["error"] == "timeout"
        await raw.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_random_bytes_fuzz(chunks: list[bytes]) -> None:
    async def scenario() -> None:
        async with DistributedLockWorker(port=0) as worker:
            raw = await RawClient.connect(worker)
            for chunk in chunks:
                await raw.send_bytes(chunk)
            raw.writer.write_eof()
            while await raw.reply() is not None:
                pass
            await raw.close()
            async with client(worker).hold("k", timeout=5):
                pass

    asyncio.run(scenario())


# -- lifecycle ----------------------------------------------------------------


async def test_stop_drops_clients_and_run_serves_until_cancelled() -> None:
    worker = DistributedLockWorker(port=0)
    runner = asyncio.create_task(worker.run())
    await wait_until(lambda: worker.port != 0)
    lock = client(worker)
    with pytest.raises(LockLostError):
        async with lock.hold("k", lease=0.3):
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await asyncio.sleep(0.5)
    with pytest.raises(OSError):
        async with lock.hold("k", timeout=2):
            pass


def test_constructor_rejects_a_default_lease_above_the_cap() -> None:
    with pytest.raises(ValueError, match="default_lease"):
        DistributedLockWorker(default_lease=100, max_lease=10)


async def test_hold_rejects_a_non_positive_lease(server: DistributedLockWorker) -> None:
    with pytest.raises(ValueError, match="lease"):
        async with client(server).hold("k", lease=0):
            pass


async def test_errors_are_fogverse_errors() -> None:
    assert issubclass(LockTimeoutError, TimeoutError)
    assert issubclass(LockLostError, LockError)


async def test_status_shows_holders_and_waiters_as_plain_json(
    server: DistributedLockWorker,
) -> None:
    async with client(server).hold("k"):
        raw = await RawClient.connect(server)
        await raw.send_bytes(encode_frame({**GOOD, "id": 3}))
        await wait_until(lambda: waiting(server, "k") == 1)
        status = server.status()
        assert json.loads(json.dumps(status)) == status
        assert status["address"] == f"127.0.0.1:{server.port}"
        assert status["clients"] == 2
        assert status["locks"]["k"]["waiting"] == 1
        assert status["locks"]["k"]["holder"].startswith("127.0.0.1:")
        await raw.close()


async def test_cancelling_the_holder_frees_the_lock(server: DistributedLockWorker) -> None:
    entered = asyncio.Event()

    async def holder() -> None:
        async with client(server).hold("k", lease=0.3):
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(holder())
    await entered.wait()
    await asyncio.sleep(0.25)  # let a renewal or two happen first
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    async with client(server).hold("k", timeout=5):
        pass
