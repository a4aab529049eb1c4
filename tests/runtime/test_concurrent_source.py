"""concurrency=N on a source: many receives in flight, outputs still in order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from fogverse import Producer
from tests.conftest import create_topic
from tests.kafka_io import read
from tests.polling import wait_until

pytestmark = pytest.mark.kafka


class RemoteQueue(Producer):
    """receive() awaits a remote queue: numbered when asked, answered after a random wait."""

    def __init__(self, delay: float = 0.01, poison: int | None = None,
                 **settings: Any) -> None:
        super().__init__(**settings)
        self.delay, self.poison = delay, poison
        self.asked = self.now = self.most = 0
        self.rng = random.Random(7)

    async def receive(self) -> dict[str, int]:
        seq, self.asked = self.asked, self.asked + 1
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.rng.random() * self.delay)
        finally:
            self.now -= 1
        if seq == self.poison:
            raise ConnectionError(f"queue hiccup at {seq}")
        return {"seq": seq}

    def process(self, data: dict[str, int]) -> dict[str, int]:
        assert self.message is not None
        # Each message's own context: the creation time set when its receive returned.
        data["created"] = int(self.message.header("fogverse-created-at") or 0)
        return data


async def test_outputs_leave_in_receive_order_and_a_failing_receive_holds_none_back(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    dst = create_topic(admin, unique("srcio-out"))
    count = 300
    source = RemoteQueue(poison=57, producer_topic=dst, consumer_servers=kafka_bootstrap,
                         max_messages=count, concurrency=16, error_policy="skip",
                         heartbeat=False)
    await asyncio.wait_for(source.run(), 60)

    out = [msgpack.unpackb(r.value) for r in read(kafka_bootstrap, dst, count)]
    seqs = [item["seq"] for item in out]
    assert seqs == [s for s in range(count + 1) if s != 57], "order broken, lost or overshot"
    assert source.stats.skipped == 1 and source.stats.consumed == count
    assert all(item["created"] > 0 for item in out)
    assert source.most > 1, "receives never overlapped"


async def test_stop_with_every_receive_in_flight_sends_what_they_bring(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    dst = create_topic(admin, unique("srcios-out"))
    source = RemoteQueue(delay=0, producer_topic=dst, consumer_servers=kafka_bootstrap,
                         concurrency=8, heartbeat=False)
    held = asyncio.Event()
    plain_receive = source.receive

    async def slow_receive() -> dict[str, int]:
        await held.wait()  # a remote call that answers only after the stop
        return await plain_receive()

    source.receive = slow_receive  # type: ignore[method-assign]
    task = asyncio.create_task(source.run())
    await wait_until(lambda: source._window is not None and source._window.in_flight == 8,
                     what="eight receives in flight")
    source.stop()
    held.set()
    await asyncio.wait_for(task, 60)

    seqs = [msgpack.unpackb(r.value)["seq"] for r in read(kafka_bootstrap, dst, 8)]
    assert seqs == list(range(8)), "a receive in flight at the stop was lost or reordered"
    assert source.stats.acked == 8
