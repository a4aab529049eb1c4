"""ParallelProducer: receive() in the stage, process() in workers, order kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fogverse.parallel import ParallelProducer
from tests.conftest import create_topic
from tests.kafka_io import read
from tests.parallel.procs import Jitter, Silent

pytestmark = pytest.mark.kafka


class Counter(ParallelProducer):
    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.next = 0

    def receive(self) -> dict[str, int]:
        self.next += 1
        assert self.message is not None
        # FogVerse sources set the key on the current message in receive().
        self.message.key = f"k{self.next % 3}".encode()
        return {"n": self.next}


async def test_outputs_leave_in_receive_order_with_their_own_keys(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    dst = create_topic(admin, unique("pprod-out"))
    count = 300
    stage = Counter(processor=Jitter(), process_number=2, producer_topic=dst,
                    consumer_servers=kafka_bootstrap, max_messages=count, heartbeat=False)
    await asyncio.wait_for(stage.run(), 90)

    out = read(kafka_bootstrap, dst, count)
    assert [r.data["n"] for r in out] == list(range(1, count + 1))  # type: ignore[index]
    assert all(r.key == f"k{r.data['n'] % 3}".encode() for r in out)  # type: ignore[index]
    assert all(r.header("fogverse-created-at") for r in out)


async def test_none_from_process_sends_nothing(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    class Numbers(ParallelProducer):
        n = 0

        def receive(self) -> int:
            self.n += 1
            return self.n

    dst = create_topic(admin, unique("pprod-none"))
    stage = Numbers(processor=Silent(), process_number=1, producer_topic=dst,
                    consumer_servers=kafka_bootstrap, max_messages=20, heartbeat=False)
    await asyncio.wait_for(stage.run(), 90)
    assert [r.data for r in read(kafka_bootstrap, dst, 10)] == list(range(2, 21, 2))


class SlowSource(ParallelProducer):
    """An async receive() that sets the key after awaiting, with an async send hook."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.next = 0
        self.sent = 0

    async def receive(self) -> dict[str, int]:
        message = self.message
        await asyncio.sleep(0)
        self.next += 1
        assert message is not None and self.message is message
        message.key = f"k{self.next % 3}".encode()
        return {"n": self.next}

    async def _after_send(self, data: bytes) -> None:
        await asyncio.sleep(0)
        self.sent += 1


async def test_async_receive_and_hooks_keep_each_message_its_own_key(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    dst = create_topic(admin, unique("pprod-async"))
    count = 150
    stage = SlowSource(processor=Jitter(), process_number=2, producer_topic=dst,
                       consumer_servers=kafka_bootstrap, max_messages=count, heartbeat=False)
    await asyncio.wait_for(stage.run(), 90)

    out = read(kafka_bootstrap, dst, count)
    assert [r.data["n"] for r in out] == list(range(1, count + 1))  # type: ignore[index]
    assert all(r.key == f"k{r.data['n'] % 3}".encode() for r in out)  # type: ignore[index]
    assert stage.sent == count
