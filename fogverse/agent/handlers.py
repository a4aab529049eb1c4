"""Task handlers: the Python callables an agent runs, one per task type.

A handler is ``handler(payload, task) -> result``, plain or ``async``; ``task``
is a :class:`TaskContext` (ids, attempt, and :meth:`TaskContext.progress` to
report how far it got). Its return value is the task's result (any msgpack
value); an exception is the task's error.

Handlers come from two places, merged (a later one replaces an earlier one of
the same type):

- the entry-point group ``fogverse.task_handlers``: the entry point's name is
  the task type, its object the callable::

      [project.entry-points."fogverse.task_handlers"]
      resize = "myapp.tasks:resize"

- ``--handlers module:object`` (or ``$FOGVERSE_AGENT_HANDLERS``, comma-separated):
  the object is either a mapping of task type to callable, or one callable
  registered under its ``task_type`` attribute, else its ``__name__``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from fogverse.constants import TASK_HANDLER_GROUP
from fogverse.errors import ConfigError

__all__ = ["TaskContext", "TaskHandler", "load_handlers", "resolve_handler_spec"]

log = logging.getLogger("fogverse.agent")


@dataclass(frozen=True)
class TaskContext:
    """What a handler knows about the task it runs."""

    task_id: str
    task_type: str
    attempt: int
    node_id: str
    report: Callable[[float | None, str], None]

    def progress(self, fraction: float | None = None, message: str = "") -> None:
        """Tell the master how far the task got (``fraction`` from 0 to 1). Thread-safe."""
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be within 0..1, got {fraction}")
        self.report(fraction, message)


class TaskHandler(Protocol):
    def __call__(self, payload: Any, task: TaskContext, /) -> Any: ...


def resolve_handler_spec(spec: str) -> dict[str, TaskHandler]:
    """The handlers named by one ``module:object`` spec."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError("--handlers", spec, "expected module:object")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError("--handlers", spec, f"cannot load it: {exc}") from None
    if isinstance(target, Mapping):
        found = dict(target)
    elif callable(target):
        found = {str(getattr(target, "task_type", None) or target.__name__): target}
    else:
        raise ConfigError("--handlers", spec,
                          "expected a callable or a mapping of task type to callable")
    for task_type, handler in found.items():
        if not isinstance(task_type, str) or not task_type or not callable(handler):
            raise ConfigError("--handlers", spec,
                              f"entry {task_type!r} is not a task type with a callable")
    return found


def load_handlers(
    specs: Iterable[str], *, use_entry_points: bool = True
) -> dict[str, TaskHandler]:
    """Handlers from the entry-point group, then from ``specs`` in order."""
    handlers: dict[str, TaskHandler] = {}
    if use_entry_points:
        for ep in entry_points(group=TASK_HANDLER_GROUP):
            try:
                handlers[ep.name] = ep.load()
            except Exception as exc:  # one broken plug-in must not stop the agent
                log.warning("skipping task handler %s (%s): %r", ep.name, ep.value, exc)
    for spec in specs:
        handlers.update(resolve_handler_spec(spec))
    return handlers
