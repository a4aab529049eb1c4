"""The worker pool with real processes and real signals, no broker."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import psutil
import pytest
import pytest_asyncio

from fogverse.codec import DefaultCodec
from fogverse.constants import CT_MSGPACK
from fogverse.parallel import Processor, ProcessorSetupError
from fogverse.parallel.jobs import Crashed, Done, Failed, Outcome
from fogverse.parallel.pool import ProcessPool
from fogverse.parallel.processor import pack_for_workers
from tests.parallel.procs import BadSetup, Echo, Hangs, Picky, Poison, Silent, Tagged
from tests.polling import wait_until

Results = dict[Any, Outcome]


class Harness:
    def __init__(self, processor: Processor, size: int = 2, **options: Any) -> None:
        self.results: Results = {}
        self.fatal: list[BaseException] = []
        self.pool: ProcessPool[Any] = ProcessPool(
            pack_for_workers(processor, DefaultCodec()), size, self._done, self.fatal.append,
            **options,
        )

    def _done(self, owner: Any, outcome: Outcome) -> None:
        assert owner not in self.results, f"{owner!r} finished twice"
        self.results[owner] = outcome

    def submit(self, owner: Any, value: Any) -> None:
        self.pool.submit(owner, msgpack.packb(value), CT_MSGPACK)

    async def wait_for(self, count: int, timeout: float = 30) -> Results:
        await wait_until(lambda: len(self.results) >= count, timeout=timeout, interval=0.01,
                         what=f"{count} results")
        return self.results

    def value(self, owner: Any) -> Any:
        outcome = self.results[owner]
        assert isinstance(outcome, Done) and outcome.payload is not None, outcome
        return msgpack.unpackb(outcome.payload)


@pytest_asyncio.fixture(loop_scope="function")
async def harness() -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def make(processor: Processor, size: int = 2, **options: Any) -> Harness:
        h = Harness(processor, size, **options)
        made.append(h)
        await h.pool.start()
        return h

    yield make
    for h in made:
        await h.pool.close(5)


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE}


async def test_setup_runs_once_per_worker(harness: Callable[..., Any]) -> None:
    h = await harness(Tagged(), size=2)
    for i in range(40):
        h.submit(i, i)
    await h.wait_for(40)
    values = [h.value(i) for i in range(40)]
    assert [v["in"] for v in values] == list(range(40))
    assert {v["setups"] for v in values} == {1}
    assert {v["pid"] for v in values} <= set(h.pool.pids)


async def test_a_killed_worker_is_replaced_and_its_messages_are_retried(
    harness: Callable[..., Any],
) -> None:
    h = await harness(Tagged(delay=0.02), size=2)
    for i in range(30):
        h.submit(i, i)
    await h.wait_for(3)
    victim = h.pool.pids[0]
    os.kill(victim, signal.SIGKILL)
    results = await h.wait_for(30)
    assert all(isinstance(o, Done) for o in results.values()), results
    assert sorted(h.value(i)["in"] for i in range(30)) == list(range(30))
    assert victim not in h.pool.pids
    assert len(h.pool.pids) == 2
    assert h.pool.stats.deaths == 1 and h.pool.stats.respawns == 1


async def test_a_message_that_keeps_crashing_workers_is_given_up_with_the_reason(
    harness: Callable[..., Any],
) -> None:
    h = await harness(Poison(), size=2, max_kills=2)
    for i in range(10):
        h.submit(i, i)
    h.submit("bad", "poison")
    for i in range(10, 20):
        h.submit(i, i)
    results = await h.wait_for(21)
    crashed = results.pop("bad")
    assert isinstance(crashed, Crashed)
    assert crashed.kills == 2
    assert "SIGSEGV" in crashed.reason
    assert sorted(h.value(i) for i in results) == list(range(20))
    assert h.pool.stats.deaths == 2


async def test_a_message_that_hangs_its_worker_is_given_up_after_job_timeout(
    harness: Callable[..., Any],
) -> None:
    h = await harness(Hangs(), size=2, max_kills=1, job_timeout=0.3)
    h.submit("stuck", "hang")
    for i in range(10):
        h.submit(i, i)
    results = await h.wait_for(11)
    stuck = results.pop("stuck")
    assert isinstance(stuck, Crashed) and "job_timeout=0.3s" in stuck.reason
    assert sorted(h.value(i) for i in results) == list(range(10))


async def test_exceptions_and_empty_results_come_back_as_outcomes(
    harness: Callable[..., Any],
) -> None:
    picky = await harness(Picky(), size=1)
    picky.submit("ok", 2)
    picky.submit("bad", -1)
    results = await picky.wait_for(2)
    assert picky.value("ok") == 4
    failed = results["bad"]
    assert isinstance(failed, Failed)
    assert (failed.step, failed.error_type) == ("process", "ValueError")
    assert "negative input -1" in failed.message and "Traceback" in failed.traceback

    silent = await harness(Silent(), size=1)
    silent.submit("odd", 3)
    empty = (await silent.wait_for(1))["odd"]
    assert isinstance(empty, Done) and empty.payload is None


async def test_undecodable_input_fails_in_the_decode_step(harness: Callable[..., Any]) -> None:
    h = await harness(Echo(), size=1)
    h.pool.submit("junk", b"\xc1", CT_MSGPACK)  # 0xc1 is never valid msgpack
    failed = (await h.wait_for(1))["junk"]
    assert isinstance(failed, Failed) and failed.step == "decode"


async def test_a_failing_setup_fails_start_with_its_traceback() -> None:
    before = _children()
    h = Harness(BadSetup(), size=2)
    with pytest.raises(ProcessorSetupError, match="model file missing") as caught:
        await h.pool.start()
    assert "RuntimeError" in str(caught.value) and "Traceback" in str(caught.value)
    assert _children() <= before, "workers left behind after a failed start"


async def test_close_stops_every_worker() -> None:
    before = _children()
    h = Harness(Echo(), size=2)
    await h.pool.start()
    pids = set(h.pool.pids)
    assert pids <= _children()
    h.submit(1, 1)
    await h.wait_for(1)
    assert await h.pool.close(5) == 0
    assert not (pids & _children())
    assert _children() <= before


async def test_only_payloads_cross_per_message_however_big_the_processor() -> None:
    class_sizes = {}
    for size in (0, 5_000_000):
        from tests.parallel.procs import Big

        h = Harness(Big(size), size=1)
        await h.pool.start()
        for i in range(20):
            h.submit(i, i)
        await h.wait_for(20)
        await h.pool.close(5)
        class_sizes[size] = (h.pool.stats.job_bytes_sent / 20, h.pool.stats.init_bytes_sent)
    assert class_sizes[0][0] == class_sizes[5_000_000][0] < 100
    assert class_sizes[5_000_000][1] > 5_000_000
