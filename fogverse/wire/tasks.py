"""Task records on the wire: submissions, the master's status, and agents' reports.

They travel in the control envelope (:mod:`fogverse.control`): versioned, msgpack,
optionally signed. Task arguments (``payload``) and results are any msgpack value;
a message with them may be up to :data:`MAX_TASK_BYTES`. Large inputs belong on a
data topic, with the task carrying their key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from fogverse.control import ControlDecodeError
from fogverse.wire.fields import (
    IMPOSSIBLE,
    flag,
    opt_number,
    opt_text,
    positive_int,
    text,
)

__all__ = [
    "FINAL_STATES",
    "KIND_TASK_ASSIGNMENT",
    "KIND_TASK_CANCEL",
    "KIND_TASK_FAILURE",
    "KIND_TASK_PROGRESS",
    "KIND_TASK_REFUSAL",
    "KIND_TASK_RESULT",
    "KIND_TASK_REVOKE",
    "KIND_TASK_STATUS",
    "KIND_TASK_SUBMIT",
    "MAX_TASK_BYTES",
    "TASK_KINDS",
    "TASK_STATES",
    "TaskAssignment",
    "TaskBody",
    "TaskCancel",
    "TaskFailure",
    "TaskProgress",
    "TaskRefusal",
    "TaskResult",
    "TaskRevoke",
    "TaskStatus",
    "TaskSubmit",
]

MAX_TASK_BYTES: Final = 1024 * 1024

KIND_TASK_SUBMIT: Final = "task_submit"
KIND_TASK_CANCEL: Final = "task_cancel"
KIND_TASK_STATUS: Final = "task_status"
KIND_TASK_ASSIGNMENT: Final = "task_assignment"
KIND_TASK_PROGRESS: Final = "task_progress"
KIND_TASK_RESULT: Final = "task_result"
KIND_TASK_FAILURE: Final = "task_failure"
KIND_TASK_REFUSAL: Final = "task_refusal"
KIND_TASK_REVOKE: Final = "task_revoke"

TASK_STATES: Final = (
    "queued", "assigned", "running", "completed", "failed", "expired", "cancelled",
)
FINAL_STATES: Final = frozenset({"completed", "failed", "expired", "cancelled"})

# Seed 000's priorities run from LOW 1 to CRITICAL 10.
_MIN_PRIORITY, _MAX_PRIORITY = 1, 10


@dataclass(frozen=True, slots=True)
class TaskSubmit:
    """A client asks for one task to run somewhere (any process, to the master)."""

    task_id: str
    task_type: str
    payload: Any = None
    priority: int = 3
    cpu: float = 0.1
    """Cores the task needs while it runs."""
    memory_mb: float = 0.0
    gpu: bool = False
    estimated_duration_s: float | None = None
    input_size_mb: float | None = None
    deadline: float | None = None
    """Wall-clock UTC epoch seconds after which the task is worthless."""
    retry_limit: int = 3
    strategy: str | None = None


@dataclass(frozen=True, slots=True)
class TaskCancel:
    task_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """The master's latest word on a task, keyed by its id on a compacted topic."""

    task_id: str
    state: str
    task_type: str = ""
    node_id: str | None = None
    attempts: int = 0
    result: Any = None
    error: str | None = None
    progress: float | None = None
    submitted_at: float | None = None
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class TaskAssignment:
    """The master tells one node to run one attempt of a task."""

    node_id: str
    task_id: str
    task_type: str
    attempt: int = 1
    payload: Any = None
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class TaskProgress:
    node_id: str
    task_id: str
    attempt: int = 1
    fraction: float | None = None
    """0..1, when the handler can tell."""
    message: str = ""


@dataclass(frozen=True, slots=True)
class TaskResult:
    node_id: str
    task_id: str
    attempt: int = 1
    result: Any = None
    seconds: float | None = None
    """How long the handler ran on the node."""


@dataclass(frozen=True, slots=True)
class TaskFailure:
    node_id: str
    task_id: str
    attempt: int = 1
    error: str = ""
    error_type: str = ""


@dataclass(frozen=True, slots=True)
class TaskRefusal:
    """A node will not run an assignment; ``reason`` is a stable label."""

    node_id: str
    task_id: str
    attempt: int = 1
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TaskRevoke:
    """Master -> agent: stop running this task; it is not (or no longer) yours to run.

    Sent when a node reports a task the master did not assign to it (a forged or
    stale order, an attempt the master gave to another node). The agent drops it
    without a report."""

    node_id: str
    task_id: str
    reason: str = ""


TaskBody: TypeAlias = (
    TaskSubmit | TaskCancel | TaskStatus | TaskAssignment | TaskProgress | TaskResult
    | TaskFailure | TaskRefusal | TaskRevoke
)


def _parse_submit(body: dict[str, Any]) -> TaskSubmit:
    priority = positive_int(body, "priority", 3, low=_MIN_PRIORITY)
    if priority > _MAX_PRIORITY:
        raise ControlDecodeError(IMPOSSIBLE, f"priority = {priority} is above {_MAX_PRIORITY}")
    return TaskSubmit(
        task_id=text(body, "task_id"),
        task_type=text(body, "task_type"),
        payload=body.get("payload"),
        priority=priority,
        cpu=opt_number(body, "cpu", 0.0, 4096.0) or 0.0,
        memory_mb=opt_number(body, "memory_mb") or 0.0,
        gpu=flag(body, "gpu", False),
        estimated_duration_s=opt_number(body, "estimated_duration_s"),
        input_size_mb=opt_number(body, "input_size_mb"),
        deadline=opt_number(body, "deadline"),
        retry_limit=positive_int(body, "retry_limit", 3, low=0),
        strategy=opt_text(body, "strategy"),
    )


def _parse_cancel(body: dict[str, Any]) -> TaskCancel:
    return TaskCancel(task_id=text(body, "task_id"), reason=text(body, "reason", ""))


def _parse_status(body: dict[str, Any]) -> TaskStatus:
    state = text(body, "state")
    if state not in TASK_STATES:
        raise ControlDecodeError(IMPOSSIBLE, f"state {state!r} is not one of {TASK_STATES}")
    return TaskStatus(
        task_id=text(body, "task_id"),
        state=state,
        task_type=text(body, "task_type", ""),
        node_id=opt_text(body, "node_id"),
        attempts=positive_int(body, "attempts", 0, low=0),
        result=body.get("result"),
        error=opt_text(body, "error"),
        progress=opt_number(body, "progress", 0.0, 1.0),
        submitted_at=opt_number(body, "submitted_at"),
        updated_at=opt_number(body, "updated_at"),
    )


def _parse_assignment(body: dict[str, Any]) -> TaskAssignment:
    return TaskAssignment(
        node_id=text(body, "node_id"),
        task_id=text(body, "task_id"),
        task_type=text(body, "task_type"),
        attempt=positive_int(body, "attempt", 1),
        payload=body.get("payload"),
        timeout_s=opt_number(body, "timeout_s"),
    )


def _parse_progress(body: dict[str, Any]) -> TaskProgress:
    return TaskProgress(
        node_id=text(body, "node_id"),
        task_id=text(body, "task_id"),
        attempt=positive_int(body, "attempt", 1),
        fraction=opt_number(body, "fraction", 0.0, 1.0),
        message=text(body, "message", ""),
    )


def _parse_result(body: dict[str, Any]) -> TaskResult:
    return TaskResult(
        node_id=text(body, "node_id"),
        task_id=text(body, "task_id"),
        attempt=positive_int(body, "attempt", 1),
        result=body.get("result"),
        seconds=opt_number(body, "seconds"),
    )


def _parse_failure(body: dict[str, Any]) -> TaskFailure:
    return TaskFailure(
        node_id=text(body, "node_id"),
        task_id=text(body, "task_id"),
        attempt=positive_int(body, "attempt", 1),
        error=text(body, "error", ""),
        error_type=text(body, "error_type", ""),
    )


def _parse_refusal(body: dict[str, Any]) -> TaskRefusal:
    return TaskRefusal(
        node_id=text(body, "node_id"),
        task_id=text(body, "task_id"),
        attempt=positive_int(body, "attempt", 1),
        reason=text(body, "reason"),
        detail=text(body, "detail", ""),
    )


def _parse_revoke(body: dict[str, Any]) -> TaskRevoke:
    return TaskRevoke(node_id=text(body, "node_id"), task_id=text(body, "task_id"),
                      reason=text(body, "reason", ""))


TASK_KINDS: Final[dict[type, tuple[str, Callable[[dict[str, Any]], Any]]]] = {
    TaskSubmit: (KIND_TASK_SUBMIT, _parse_submit),
    TaskCancel: (KIND_TASK_CANCEL, _parse_cancel),
    TaskStatus: (KIND_TASK_STATUS, _parse_status),
    TaskAssignment: (KIND_TASK_ASSIGNMENT, _parse_assignment),
    TaskProgress: (KIND_TASK_PROGRESS, _parse_progress),
    TaskResult: (KIND_TASK_RESULT, _parse_result),
    TaskFailure: (KIND_TASK_FAILURE, _parse_failure),
    TaskRefusal: (KIND_TASK_REFUSAL, _parse_refusal),
    TaskRevoke: (KIND_TASK_REVOKE, _parse_revoke),
}
"""Each record type's kind and parser; :mod:`fogverse.wire.nodes` joins them to its own."""
