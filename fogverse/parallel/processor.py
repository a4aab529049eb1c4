"""The user's work for a parallel stage, and getting it to the workers once.

A Processor is pickled a single time when the stage starts and sent to each
worker process, never with a message. Whatever cannot be pickled (a model
session, a lock, a socket) belongs in ``setup()``, which runs in the worker.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from fogverse.codec import Codec
from fogverse.parallel.errors import UnpicklableProcessorError

__all__ = ["Processor", "ProcessorLike", "find_unpicklable", "pack_for_workers"]

_MAX_DEPTH = 12

_Found = tuple[str, object, Exception]
"""Where pickle failed: the attribute path, the value there, pickle's error."""


@runtime_checkable
class ProcessorLike(Protocol):
    """Anything with ``process(data) -> result``; setup() and teardown() are optional."""

    def process(self, data: Any) -> Any: ...


class Processor:
    """FogVerse's Processor: the work a parallel stage runs in its workers.

    Subclass it and define :meth:`process`. The instance is pickled once at
    start and copied into every worker, so each worker has its own attributes.
    """

    def setup(self) -> None:
        """Runs once in each worker before its first message: load a model here."""

    def process(self, data: Any) -> Any:
        """Return the result for ``data``; None sends nothing for this input."""
        raise NotImplementedError(f"{type(self).__name__} must define process()")

    def teardown(self) -> None:
        """Runs once in each worker when the stage stops."""


def pack_for_workers(processor: object, codec: Codec) -> bytes:
    """Pickle the Processor and the stage's codec for the workers' first frame.

    Raises UnpicklableProcessorError naming the attribute pickle refused.
    """
    _check("Processor", processor)
    _check("codec", codec)
    return pickle.dumps((processor, codec), protocol=pickle.HIGHEST_PROTOCOL)


def _check(role: str, obj: object) -> None:
    try:
        pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise _unpicklable(role, obj, exc) from exc


def _unpicklable(role: str, obj: object, exc: Exception) -> UnpicklableProcessorError:
    name = type(obj).__name__
    found = find_unpicklable(obj)
    path, culprit, error = found if found is not None else ("", obj, exc)
    if path:
        return UnpicklableProcessorError(
            f"{role} {name} cannot be sent to worker processes: its attribute {path!r} "
            f"({type(culprit).__name__}) cannot be pickled ({error}). Create it in setup(), "
            "which runs once inside each worker, or use executor='thread'.",
            path,
        )
    return UnpicklableProcessorError(
        f"{role} {name} cannot be sent to worker processes: it cannot be pickled ({error}). "
        "Define its class at module level (not inside a function), or use executor='thread'.",
        "",
    )


def find_unpicklable(obj: object) -> _Found | None:
    """The deepest part of ``obj`` that pickle refuses: (path, part, error), or None."""
    return _search(obj, "", 0, set())


def _search(obj: object, path: str, depth: int, seen: set[int]) -> _Found | None:
    try:
        pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return None
    except Exception as exc:
        error = exc
    if depth < _MAX_DEPTH and id(obj) not in seen:
        seen.add(id(obj))
        for suffix, part in _parts(obj):
            found = _search(part, _join(path, suffix), depth + 1, seen)
            if found is not None:
                return found
    return path, obj, error


def _join(path: str, suffix: str) -> str:
    if not path:
        return suffix.lstrip(".")
    return path + suffix


def _parts(obj: object) -> Iterator[tuple[str, object]]:
    """What pickle would copy of ``obj``, as (path suffix, value)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for index, value in enumerate(obj):
            yield f"[{index}]", value
        return
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for key, value in state.items():
            yield f".{key}", value
    for cls in type(obj).__mro__:
        for slot in _slot_names(cls):
            if hasattr(obj, slot):
                yield f".{slot}", getattr(obj, slot)


def _slot_names(cls: type) -> tuple[str, ...]:
    slots = cls.__dict__.get("__slots__", ())
    if isinstance(slots, str):
        slots = (slots,)
    return tuple(s for s in slots if s not in ("__dict__", "__weakref__"))
