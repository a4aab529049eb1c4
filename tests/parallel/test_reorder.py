"""The reorder buffer: any completion order in, arrival order per key out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fogverse.parallel.reorder import ReorderBuffer, Ticket

arrivals = st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=60)


@given(keys=arrivals, data=st.data())
def test_ordered_releases_each_key_in_arrival_order_whatever_the_completion_order(
    keys: list[int], data: st.DataObject
) -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer(ordered=True)
    tickets = [(i, buffer.reserve(key)) for i, key in enumerate(keys)]
    order = data.draw(st.permutations(tickets))
    released: list[int] = []
    for i, ticket in order:
        released.extend(buffer.complete(ticket, i))
    assert sorted(released) == list(range(len(keys))), "each item leaves exactly once"
    for key in set(keys):
        mine = [i for i in released if keys[i] == key]
        assert mine == sorted(mine), f"key {key} left out of order"
    assert len(buffer) == 0


@given(keys=arrivals, data=st.data())
def test_an_item_waits_only_for_earlier_items_of_its_own_key(
    keys: list[int], data: st.DataObject
) -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer(ordered=True)
    tickets = [buffer.reserve(key) for key in keys]
    done: set[int] = set()
    released: set[int] = set()
    for i in data.draw(st.permutations(range(len(keys)))):
        released.update(buffer.complete(tickets[i], i))
        done.add(i)
        for j in range(len(keys)):
            earlier_done = all(k in done for k in range(j + 1) if keys[k] == keys[j])
            assert (j in released) == earlier_done
    assert len(buffer) == 0


@given(keys=arrivals, data=st.data())
def test_unordered_releases_at_once(keys: list[int], data: st.DataObject) -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer(ordered=False)
    tickets = [buffer.reserve(key) for key in keys]
    for i in data.draw(st.permutations(range(len(keys)))):
        assert buffer.complete(tickets[i], i) == [i]
    assert len(buffer) == 0


def test_len_counts_held_items() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    first, second = buffer.reserve("p0"), buffer.reserve("p0")
    assert buffer.complete(second, "b") == []
    assert len(buffer) == 2
    assert buffer.complete(first, "a") == ["a", "b"]
    assert len(buffer) == 0


def test_completing_twice_is_refused() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    ticket: Ticket[str] = buffer.reserve(0)
    buffer.complete(ticket, "x")
    with pytest.raises(ValueError, match="twice"):
        buffer.complete(ticket, "x")
