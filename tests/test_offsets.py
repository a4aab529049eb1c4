"""Commit positions never pass an unfinished input, whatever order work finishes in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fogverse.offsets import CommitTracker, WorkUnit

TP = ("t", 0)


def _units(n: int, tracker: CommitTracker) -> list[WorkUnit]:
    units = []
    for offset in range(n):
        unit = WorkUnit(pending=1, sealed=True)
        tracker.open(unit, TP, offset)
        units.append(unit)
    return units


@given(st.permutations(list(range(12))), st.integers(0, 12))
def test_commit_is_the_end_of_the_finished_prefix(order: list[int], how_many: int) -> None:
    tracker = CommitTracker()
    units = _units(12, tracker)
    finished: set[int] = set()
    committed = 0
    for offset in order[:how_many]:
        units[offset].pending = 0
        finished.add(offset)
        tracker.settle(units[offset])
        committed = tracker.take_ready().get(TP, committed)
    prefix = 0
    while prefix in finished:
        prefix += 1
    assert committed == prefix


def test_a_failed_unit_blocks_commits_behind_it() -> None:
    tracker = CommitTracker()
    units = _units(3, tracker)
    units[0].failed = True
    for unit in units:
        unit.pending = 0
        tracker.settle(unit)
    assert tracker.take_ready() == {}


def test_revoked_partitions_are_forgotten_and_not_requeued() -> None:
    tracker = CommitTracker()
    done = WorkUnit(pending=0, sealed=True)
    tracker.open(done, TP, 5)
    tracker.settle(done)
    assert tracker.forget([TP]) == {TP: 6}
    late = WorkUnit(pending=0, sealed=True, last={TP: 9})
    tracker.add(late)
    tracker.settle(late)
    assert tracker.take_ready() == {}
    tracker.assigned([TP])
    again = WorkUnit(pending=0, sealed=True, last={TP: 12})
    tracker.add(again)
    tracker.settle(again)
    assert tracker.take_ready() == {TP: 13}


def test_a_batch_unit_spanning_partitions_commits_each() -> None:
    tracker = CommitTracker()
    unit = WorkUnit(last={("t", 0): 4, ("t", 1): 7})
    tracker.add(unit)
    unit.sealed = True
    tracker.settle(unit)
    assert tracker.take_ready() == {("t", 0): 5, ("t", 1): 8}


def test_a_batch_from_before_a_revoke_and_reassign_commits_nothing() -> None:
    # Fetched at revocation count 0; the partition is revoked and assigned back
    # while it is processed, and the group re-reads from the last commit (5).
    tracker = CommitTracker()
    stale = WorkUnit(born=tracker.revocations, last={TP: 20})
    tracker.forget([TP])
    tracker.assigned([TP])
    reread = WorkUnit(born=tracker.revocations, last={TP: 10})
    tracker.add(stale)
    tracker.add(reread)
    stale.sealed = True
    tracker.settle(stale)
    assert tracker.take_ready() == {}, "committed past inputs the re-read has not finished"
    reread.sealed = True
    tracker.settle(reread)
    assert tracker.take_ready() == {TP: 11}


def test_work_fetched_after_the_reassignment_is_tracked() -> None:
    tracker = CommitTracker()
    tracker.forget([TP])
    tracker.assigned([TP])
    fresh = WorkUnit(born=tracker.revocations, last={TP: 3}, sealed=True)
    tracker.add(fresh)
    tracker.settle(fresh)
    assert tracker.take_ready() == {TP: 4}
