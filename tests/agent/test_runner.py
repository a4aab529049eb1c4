"""The agent's task runner: one report per assignment, within the declared concurrency."""

from __future__ import annotations

import threading
from typing import Any

from fogverse.agent.runner import TaskRunner
from fogverse.wire.tasks import (
    TaskAssignment,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
)
from tests.agent.task_handlers import HANDLERS
from tests.polling import wait_until


class Reports(list[Any]):
    def __call__(self, msg: Any) -> None:
        self.append(msg)

    def final(self) -> list[Any]:
        return [m for m in self if not isinstance(m, TaskProgress)]


def _runner(max_concurrent: int = 2, handlers: dict[str, Any] | None = None) -> tuple[
        TaskRunner, Reports]:
    reports = Reports()
    return TaskRunner("node-a", handlers or HANDLERS, max_concurrent, reports), reports


async def test_plain_and_async_handlers_report_their_results() -> None:
    runner, reports = _runner()
    runner.assign(TaskAssignment("node-a", "t1", "echo", payload="hi"))
    runner.assign(TaskAssignment("node-a", "t2", "add", payload=[1, 2, 3]))
    await wait_until(lambda: len(reports.final()) == 2)
    results = {m.task_id: m for m in reports.final()}
    assert isinstance(results["t1"], TaskResult)
    assert results["t1"].result["echo"] == "hi"
    assert results["t2"].result == 6
    assert runner.running == ()


async def test_an_exception_is_the_tasks_error() -> None:
    runner, reports = _runner()
    runner.assign(TaskAssignment("node-a", "t1", "boom", payload="bad input"))
    await wait_until(lambda: reports.final())
    [failure] = reports.final()
    assert isinstance(failure, TaskFailure)
    assert (failure.error, failure.error_type) == ("boom: bad input", "RuntimeError")


async def test_unknown_type_is_refused_with_its_reason() -> None:
    runner, reports = _runner()
    runner.assign(TaskAssignment("node-a", "t1", "transcode"))
    [refusal] = reports
    assert isinstance(refusal, TaskRefusal)
    assert refusal.reason == "unknown_task_type"
    assert "transcode" in refusal.detail


async def test_past_the_declared_concurrency_a_task_is_refused_busy() -> None:
    gate = threading.Event()

    def blocked(payload: Any, task: Any) -> str:
        gate.wait(30)
        return "done"

    runner, reports = _runner(1, {"blocked": blocked})
    runner.assign(TaskAssignment("node-a", "t1", "blocked"))
    runner.assign(TaskAssignment("node-a", "t2", "blocked"))
    assert [(m.task_id, m.reason) for m in reports] == [("t2", "busy")]
    gate.set()
    await wait_until(lambda: len(reports) == 2)
    assert isinstance(reports[1], TaskResult) and reports[1].task_id == "t1"


async def test_a_repeated_attempt_runs_once() -> None:
    runner, reports = _runner()
    runner.assign(TaskAssignment("node-a", "t1", "echo", attempt=1))
    await wait_until(lambda: reports.final())
    runner.assign(TaskAssignment("node-a", "t1", "echo", attempt=1))
    runner.assign(TaskAssignment("node-a", "t1", "echo", attempt=2))  # a retry does run
    await wait_until(lambda: len(reports.final()) == 3)
    kinds = [(type(m).__name__, m.attempt) for m in reports.final()]
    assert kinds == [("TaskResult", 1), ("TaskRefusal", 1), ("TaskResult", 2)]


async def test_progress_then_result_and_timeouts_fail() -> None:
    runner, reports = _runner()
    runner.assign(TaskAssignment("node-a", "t1", "slow", payload=0.04))
    runner.assign(TaskAssignment("node-a", "t2", "slow", payload=1, timeout_s=0.05))
    await wait_until(lambda: len(reports.final()) == 2)
    fractions = [m.fraction for m in reports if isinstance(m, TaskProgress) and m.task_id == "t1"]
    assert fractions == [0.0, 0.25, 0.5, 0.75]
    final = {m.task_id: m for m in reports.final()}
    assert isinstance(final["t1"], TaskResult)
    assert isinstance(final["t2"], TaskFailure) and final["t2"].error_type == "TimeoutError"


async def test_a_result_msgpack_cannot_carry_is_an_error_not_a_crash() -> None:
    runner, reports = _runner(handlers={"odd": lambda payload, task: object()})
    runner.assign(TaskAssignment("node-a", "t1", "odd"))
    await wait_until(lambda: reports.final())
    assert isinstance(reports[0], TaskFailure)
