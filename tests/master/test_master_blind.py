"""The master's own blindness: a silent control topic, a failing reader, a dead task.

Pure: the master is built but not started; messages and ticks get their time by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fogverse.control import Heartbeat, encode_control
from master import Master, Worker, master_settings
from master.master import MasterFailed


def _beat(instance_id: str) -> bytes:
    hb = Heartbeat(instance_id=instance_id, service_name="svc", source_topic="in",
                   target_topic="out", consumed=0, produced=0, interval=1.0)
    return encode_control(hb, instance_id)


async def test_a_gap_in_all_control_messages_expires_no_instance() -> None:
    settings = master_settings({"included_worker": [Worker.STATISTIC_WORKER]},
                               env={"FOGVERSE_BOOTSTRAP": "127.0.0.1:1"})
    master = Master(settings)
    for t in (0.0, 1.0, 2.0):
        for name in ("a", "b", "c"):
            master.handle_raw(_beat(name), t, time.time())
    await master.tick(4.0)   # nothing at all for 2 s: nobody is past a deadline yet
    await master.tick(8.0)   # nothing at all for 6 s: the master may be blind
    assert len(master.registry) == 3
    for name in ("a", "b", "c"):
        master.handle_raw(_beat(name), 8.5, time.time())
    await master.tick(9.0)
    assert len(master.registry) == 3


class _FlakyConsumer:
    """consume() fails ``failures`` times, then returns nothing."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def consume(self, num: int, timeout: float) -> list[Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"broker said no ({self.calls})")
        time.sleep(0.01)
        return []


def _reading_master(consumer: _FlakyConsumer) -> Master:
    settings = master_settings({"included_worker": [Worker.STATISTIC_WORKER]},
                               env={"FOGVERSE_BOOTSTRAP": "127.0.0.1:1"})
    master = Master(settings)
    master._consumer = consumer  # type: ignore[assignment]
    master._reader_pool = ThreadPoolExecutor(1)
    master.read_backoff = 0.01
    return master


async def _wait(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_a_read_that_fails_a_few_times_is_retried() -> None:
    consumer = _FlakyConsumer(failures=2)
    master = _reading_master(consumer)
    master._start_tasks()
    try:
        await _wait("reads after the failures", lambda: consumer.calls > 5)
        assert master.failure is None and not master._stopping.is_set()
    finally:
        master.stop()
        await asyncio.gather(*master._tasks, return_exceptions=True)
        assert master._reader_pool is not None
        master._reader_pool.shutdown()


async def test_a_reader_that_keeps_failing_stops_the_master_with_an_error() -> None:
    master = _reading_master(_FlakyConsumer(failures=1000))
    master._start_tasks()
    await _wait("the master to stop", master._stopping.is_set)
    await asyncio.gather(*master._tasks, return_exceptions=True)
    assert isinstance(master.failure, MasterFailed)
    assert "broker said no" in str(master.failure)
    assert master._reader_pool is not None
    master._reader_pool.shutdown()


async def test_a_task_that_ends_unexpectedly_stops_the_master(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    master = _reading_master(_FlakyConsumer(failures=0))

    def broken(now: float) -> list[Any]:
        raise ValueError("registry bug")

    monkeypatch.setattr(master.registry, "expire", broken)
    master._start_tasks()
    await _wait("the master to stop", master._stopping.is_set)
    await asyncio.gather(*master._tasks, return_exceptions=True)
    assert isinstance(master.failure, ValueError)
    assert master._reader_pool is not None
    master._reader_pool.shutdown()
