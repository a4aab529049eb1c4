"""Task records: what was asked for, and what became of it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["TaskPriority", "TaskRecord", "TaskSpec", "TaskState", "TaskType"]


class TaskType(Enum):
    __hash__ = object.__hash__  # members are singletons; Enum's own hash is slow on hot paths

    INFERENCE = "inference"
    TRAINING = "training"
    EMBEDDING = "embedding"
    PREPROCESSING = "preprocessing"
    OPTIMIZATION = "optimization"
    VALIDATION = "validation"


class TaskPriority(Enum):
    __hash__ = object.__hash__

    LOW = 1
    NORMAL = 3
    HIGH = 7
    CRITICAL = 10


class TaskState(Enum):
    __hash__ = object.__hash__

    PENDING = "pending"
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self not in (TaskState.PENDING, TaskState.ASSIGNED)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a task needs. CPU is kept in whole millicores so sums never drift."""

    task_type: TaskType = TaskType.INFERENCE
    priority: TaskPriority = TaskPriority.NORMAL
    cpu_millicores: int = 1000
    memory_mb: int = 512
    requires_gpu: bool = False
    estimated_duration: float = 60.0
    input_size_mb: float = 0.0
    deadline: float | None = None
    max_retries: int = 3
    strategy: str | None = None

    @property
    def cpu_cores(self) -> float:
        return self.cpu_millicores / 1000

    def __post_init__(self) -> None:
        problems = [
            (self.cpu_millicores < 0, "cpu_cores must not be negative"),
            (self.memory_mb < 0, "memory_mb must not be negative"),
            (not math.isfinite(self.estimated_duration) or self.estimated_duration <= 0,
             "estimated_duration must be a positive number of seconds"),
            (not math.isfinite(self.input_size_mb) or self.input_size_mb < 0,
             "input_size_mb must not be negative"),
            (self.deadline is not None and not math.isfinite(self.deadline),
             "deadline must be a time"),
            (self.max_retries < 0, "max_retries must not be negative"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)


@dataclass(slots=True)
class TaskRecord:
    task_id: str
    spec: TaskSpec
    submitted_at: float
    seq: int
    state: TaskState = TaskState.PENDING
    node_id: str | None = None
    attempts: int = 0
    assigned_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    tried: tuple[str, ...] = ()

    def as_status(self) -> dict[str, object]:
        spec = self.spec
        return {
            "task_id": self.task_id,
            "status": self.state.value,
            "task_type": spec.task_type.value,
            "priority": spec.priority.name,
            "assigned_node": self.node_id,
            "attempts": self.attempts,
            "submitted_at": self.submitted_at,
            "assigned_at": self.assigned_at,
            "finished_at": self.finished_at,
            "deadline": spec.deadline,
            "reason": self.reason,
        }
