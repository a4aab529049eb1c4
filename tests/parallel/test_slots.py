"""The in-flight bound."""

from __future__ import annotations

import pytest

from fogverse.parallel.slots import Slots


async def test_room_and_idle_follow_take_and_release() -> None:
    slots = Slots(2)
    slots.take()
    assert slots.has_room
    slots.take()
    assert not slots.has_room
    assert not await slots.wait_room(0.01)
    slots.release()
    assert await slots.wait_room(0.01)
    assert not await slots.wait_idle(0.01)
    slots.release()
    assert await slots.wait_idle(0.01)


def test_releasing_more_than_taken_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        Slots(1).release()
    with pytest.raises(ValueError):
        Slots(0)
