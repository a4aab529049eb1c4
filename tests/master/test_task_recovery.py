"""A restarted master's desk and every report's reconciliation, over the real scheduler."""

from __future__ import annotations

from fogverse.wire.tasks import TaskAssignment, TaskResult, TaskRevoke, TaskStatus, TaskSubmit
from tests.master.test_fleet_desk import Desk, report


def restarted(*statuses: TaskStatus) -> Desk:
    d = Desk()
    d.desk.recovery.earlier = {s.task_id: s for s in statuses}
    return d


def test_a_finished_task_read_again_is_neither_run_nor_said_again() -> None:
    d = restarted(TaskStatus("t1", "completed", "echo", "a", 1, result=1, updated_at=90.0))
    d.book.on_report(report("a"), 0.0, 100.0)
    d.desk.on_submit(TaskSubmit("t1", "echo"), 100.0, 100.0, (0, 5))
    d.desk.tick(100.1, 100.1)
    assert (d.orders, d.statuses, d.desk.unfinished) == ([], [], {})


def test_a_running_task_is_adopted_where_it_runs_and_finishes_once() -> None:
    d = restarted(TaskStatus("t1", "running", "echo", "a", 2, updated_at=90.0))
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 100.0, 100.0, (0, 5))
    d.book.on_report(report("a", running_tasks=("t1",)), 0.0, 100.0)
    d.desk.recovery.reconcile(d.book.entries["a"].report, 100.0, 100.0, 100.0)
    d.desk.tick(100.1, 100.1)
    assert d.orders == []  # not sent again
    d.desk.on_report(TaskResult("a", "t1", 2, "done"), 100.2, 100.2)
    assert [(s.state, s.node_id, s.attempts) for s in d.statuses] == [
        ("running", "a", 2), ("completed", "a", 2)]
    assert d.desk.unfinished == {}


def test_a_result_sent_while_no_master_ran_completes_the_task() -> None:
    d = restarted(TaskStatus("t1", "assigned", "echo", "a", 1, updated_at=90.0))
    d.desk.on_submit(TaskSubmit("t1", "echo"), 100.0, 100.0, (0, 5))
    d.desk.on_report(TaskResult("a", "t1", 1, "done"), 100.0, 100.0)  # "a" not heard yet
    assert [(s.state, s.node_id, s.attempts, s.result) for s in d.statuses] == [
        ("completed", "a", 1, "done")]


def test_an_attempt_its_node_no_longer_runs_is_lost_and_retried() -> None:
    d = restarted(TaskStatus("t1", "running", "echo", "a", 1, updated_at=90.0))
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 100.0, 100.0, (0, 5))
    d.book.on_report(report("a"), 0.0, 100.0)
    d.desk.recovery.reconcile(d.book.entries["a"].report, 80.0, 100.0, 100.0)  # older: no word
    for sent in (101.0, 102.0, 103.0):
        d.desk.recovery.reconcile(d.book.entries["a"].report, sent, sent, sent)
    d.desk.tick(104.0, 104.0)
    [order] = d.orders
    assert (order.node_id, order.attempt) == ("a", 2)  # the only node: tried again there


def test_submissions_wait_while_the_master_settles() -> None:
    d = Desk()
    d.desk.recovery.settling = True
    d.desk.on_submit(TaskSubmit("t1", "echo"), 100.0, 100.0, (0, 5))
    assert d.statuses == []  # no node heard yet: not failed for want of a handler
    d.book.on_report(report("a"), 0.0, 101.0)
    d.desk.recovery.settle(101.0, 101.0)
    d.desk.tick(101.1, 101.1)
    assert [s.state for s in d.statuses] == ["queued", "assigned"]


def test_a_task_a_node_was_not_given_is_revoked_once() -> None:
    d = Desk()
    d.book.on_report(report("a"), 0.0, 100.0)
    d.book.on_report(report("b", cpu_percent=90.0), 0.0, 100.0)
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 100.0, 100.0)
    d.desk.tick(100.1, 100.1)
    assert d.orders[-1].node_id == "a"
    stray = report("b", running_tasks=("t1", "forged"))
    for _ in range(2):
        d.book.on_report(stray, 0.0, 100.2)
        d.desk.recovery.reconcile(stray, 100.2, 100.2, 100.2)
    revokes = [o for o in d.orders if isinstance(o, TaskRevoke)]
    assert sorted((o.node_id, o.task_id, o.reason) for o in revokes) == [
        ("b", "forged", "unknown_task"), ("b", "t1", "not_assigned_here")]


def test_a_task_its_node_stops_listing_is_retried() -> None:
    d = Desk()
    d.book.on_report(report("a"), 0.0, 100.0)
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 100.0, 100.0)
    d.desk.tick(100.1, 100.1)
    for sent in (101.0, 102.0, 103.0):
        d.desk.recovery.reconcile(report("a"), sent, sent, sent)
    d.desk.tick(104.0, 104.0)
    assignments = [o for o in d.orders if isinstance(o, TaskAssignment)]
    assert [o.attempt for o in assignments] == [1, 2]
    assert d.desk.recovery.lost_attempts == 1
