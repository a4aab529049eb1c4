"""ConsumerStorage without a broker: newest-only, bounded with backpressure, and ending."""

from __future__ import annotations

import asyncio

import pytest

from fogverse import ConsumerStorage, MessageContext, SourceExhaustedError


class Storage(ConsumerStorage):
    pass


async def put(storage: ConsumerStorage, data: object, key: bytes) -> None:
    storage.message = MessageContext(value=None, key=key, headers=[("frame", key)])
    await storage.send(data)


async def test_live_storage_keeps_only_the_newest_item_and_counts_the_rest() -> None:
    storage = Storage(keep_messages=False)
    for i in range(5):
        await put(storage, i, str(i).encode())
    item = await storage.get()
    assert (item.data, storage.dropped, storage.qsize()) == (4, 4, 0)
    assert item.message is not None and item.message.key == b"4"
    assert item["data"] == 4 and item["message"].header("frame") == b"4"  # FogVerse's dict shape


async def test_queued_storage_waits_for_room_and_keeps_order() -> None:
    storage = Storage(keep_messages=True, maxsize=2)
    for i in range(2):
        await put(storage, i, b"k")
    third = asyncio.create_task(put(storage, 2, b"k"))
    await asyncio.sleep(0.05)
    assert not third.done(), "send should wait while the storage is full"
    got = [(await storage.get()).data]
    await asyncio.wait_for(third, 5)
    got += [(await storage.get()).data, (await storage.get()).data]
    assert got == [0, 1, 2] and storage.dropped == 0


async def test_a_finished_storage_hands_out_what_is_left_then_ends_the_reader() -> None:
    storage = Storage(keep_messages=True)
    await put(storage, "last", b"k")
    storage._storage_done = True  # what run() does when the receiving stage stops
    storage._notify()
    assert (await storage.get()).data == "last"
    with pytest.raises(SourceExhaustedError):
        await storage.get()


async def test_when_the_reader_task_ends_the_storage_stops() -> None:
    storage = Storage(keep_messages=True)
    await put(storage, 1, b"k")

    async def reader() -> None:
        await storage.get()

    await asyncio.create_task(reader())
    await asyncio.sleep(0)
    assert storage.stopping
    await put(storage, 2, b"k")  # nobody will read it: counted, never waited on
    assert storage.dropped == 1
