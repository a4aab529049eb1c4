"""What can go wrong in a parallel stage, each saying what to change."""

from __future__ import annotations

from fogverse.errors import FogVerseError

__all__ = [
    "PoolBrokenError",
    "ProcessorError",
    "ProcessorSetupError",
    "UnpicklableProcessorError",
    "WorkerCrashedError",
]


class UnpicklableProcessorError(FogVerseError, TypeError):
    """The Processor (or codec) cannot be sent to worker processes.

    ``attribute`` is the path of the first part that pickle refused, such as
    ``"model.session"``; empty when the object itself is the problem.
    """

    def __init__(self, message: str, attribute: str) -> None:
        super().__init__(message)
        self.attribute = attribute


class ProcessorError(FogVerseError):
    """The Processor raised while handling one message, in a worker.

    ``error_type`` is the name the exception had in the worker, so dead letters
    carry the real type rather than this wrapper's.
    """

    def __init__(self, step: str, error_type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.step = step
        self.error_type = error_type
        self.traceback = traceback


class ProcessorSetupError(FogVerseError):
    """A worker could not get ready: unpickling the Processor or its setup() failed."""

    def __init__(self, error_type: str, message: str, traceback: str = "") -> None:
        super().__init__(
            f"Processor setup failed in a worker: {error_type}: {message}\n{traceback}".rstrip()
        )
        self.error_type = error_type
        self.traceback = traceback


class WorkerCrashedError(FogVerseError):
    """Worker processes died while running this message, more times than allowed."""

    def __init__(self, reason: str, kills: int) -> None:
        times = "once" if kills == 1 else f"{kills} times"
        super().__init__(
            f"a worker process died while processing this message ({reason}), {times}; "
            "not retried again"
        )
        self.reason = reason
        self.kills = kills


class PoolBrokenError(FogVerseError):
    """Workers keep dying before they are ready; the stage cannot go on."""
