"""The master's own blindness: a silent control topic, a failing reader, a dead task.

The silence is pure (messages and ticks get their time by hand); a failing
reader and a dead task are shown on a master running against the real broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from fogverse.control import Heartbeat, encode_control
from master import Master, MasterFailedError, Worker, master_settings
from master.control_reader import ControlReader
from tests.polling import wait_until


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

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"broker said no ({self.calls})")
        time.sleep(0.01)
        return []

    def close(self) -> None:
        pass


def _flaky_reader(consumer: _FlakyConsumer, seen: list[bytes | None]) -> ControlReader:
    return ControlReader(None, "ctl", seen.extend, consumer=consumer, backoff=0.01)


async def test_a_read_that_fails_a_few_times_is_retried() -> None:
    consumer = _FlakyConsumer(failures=2)
    reader = _flaky_reader(consumer, [])
    stopping = asyncio.Event()
    task = asyncio.create_task(reader.run(stopping))
    try:
        await wait_until(lambda: consumer.calls > 5, what="reads after the failures")
        assert not task.done()
    finally:
        stopping.set()
        await task
        await reader.close()


async def test_a_reader_that_keeps_failing_gives_up_with_an_error() -> None:
    reader = _flaky_reader(_FlakyConsumer(failures=1000), [])
    with pytest.raises(MasterFailedError, match="broker said no"):
        await reader.run(asyncio.Event())
    await reader.close()


def _master(servers: str, unique: Callable[[str], str]) -> Master:
    return Master(master_settings({
        "consumer_topic": unique("control"), "consumer_servers": servers,
        "consumer_group_id": unique("master"), "http_port": None, "state_topic": "",
        "included_worker": [Worker.STATISTIC_WORKER],
    }))


async def test_a_master_whose_reader_keeps_failing_stops_with_an_error(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    master = _master(kafka_bootstrap, unique)
    master.reader = _flaky_reader(_FlakyConsumer(failures=1000), [])
    with pytest.raises(MasterFailedError, match="broker said no"):
        await master.run()


async def test_a_task_that_ends_unexpectedly_stops_the_master(
    kafka_bootstrap: str, unique: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    master = _master(kafka_bootstrap, unique)

    def broken(now: float) -> list[Any]:
        raise ValueError("registry bug")

    monkeypatch.setattr(master.registry, "expire", broken)
    with pytest.raises(MasterFailedError, match="registry bug") as info:
        await master.run()
    assert isinstance(info.value.__cause__, ValueError)
