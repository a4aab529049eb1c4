"""Tasks submitted from any process: the client and the records on the wire."""

from fogverse.tasks.client import TaskClient
from fogverse.wire.tasks import (
    TaskAssignment,
    TaskCancel,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
    TaskStatus,
    TaskSubmit,
)

__all__ = [
    "TaskAssignment",
    "TaskCancel",
    "TaskClient",
    "TaskFailure",
    "TaskProgress",
    "TaskRefusal",
    "TaskResult",
    "TaskStatus",
    "TaskSubmit",
]
