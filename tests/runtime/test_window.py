"""The in-flight window on its own: room, order gates and draining (no broker)."""

from __future__ import annotations

import asyncio

from fogverse.runtime.window import Gate, Window


async def test_work_waits_for_its_predecessor_of_the_same_key_only() -> None:
    window = Window(8)
    sent: list[str] = []

    def work(name: str, delay: float) -> object:
        async def run(gate: Gate | None) -> None:
            await asyncio.sleep(delay)  # the slow "remote call" happens concurrently
            if gate is not None:
                await gate
            sent.append(name)
        return run

    await window.admit("a", work("a1", 0.05))  # type: ignore[arg-type]
    await window.admit("a", work("a2", 0.0))  # type: ignore[arg-type]
    await window.admit("b", work("b1", 0.0))  # type: ignore[arg-type]
    await window.drain(5)
    assert sent.index("a1") < sent.index("a2"), "a2 overtook a1 of the same key"
    assert sent.index("b1") < sent.index("a1"), "another key was held back"


async def test_a_failure_releases_the_next_one() -> None:
    window = Window(4)
    sent: list[int] = []

    async def fail(gate: Gate | None) -> None:
        raise ValueError("bad")

    async def ok(gate: Gate | None) -> None:
        if gate is not None:
            await gate
        sent.append(2)

    await window.admit("k", fail)
    await window.admit("k", ok)
    await window.drain(5)
    assert sent == [2]
    # A drained window (its idle workers gone) takes work again.
    await window.admit("k", ok)
    assert await window.drain(5) == 0
    assert sent == [2, 2]


async def test_admission_waits_for_room_and_drain_cancels_what_is_left() -> None:
    window = Window(2, queued_limit=1)
    forever = asyncio.Event()

    async def stuck(gate: Gate | None) -> None:
        await forever.wait()

    for key in (1, 2, 3):  # two in flight, one queued to start
        await window.admit(key, stuck)
    fourth = asyncio.create_task(window.admit(4, stuck))
    for _ in range(10):  # with room, admission would finish within a loop turn
        await asyncio.sleep(0)
    assert (window.in_flight, window.queued) == (2, 1)
    assert not fourth.done(), "a full window admitted more"
    assert await window.drain(0.05) == 3
    await asyncio.wait_for(fourth, 5)  # room again once the first three left
    assert await window.drain(0.05) == 1
    assert window.in_flight == window.queued == 0
