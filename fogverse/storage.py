"""ConsumerStorage: the in-process hand-over between a receiving and a sending stage.

FogVerse's input components read in one stage and send in another, in one process::

    class MyStorage(OpenCVConsumer, ConsumerStorage): ...      # or (Consumer, ConsumerStorage)
    class MySender(CsvLogging, Producer):
        async def receive(self):
            return await self.consumer.get()                   # self.consumer = the storage

    await asyncio.gather(storage.run(), sender.run())

Items are kept as data (nothing is encoded to cross the hand-over), each with its
message's context, so the sender's ``self.message`` is the message that came in.
``keep_messages=False`` keeps only the newest item (live video: a slow sender gets
the latest frame, and the replaced ones are counted in ``dropped``);
``keep_messages=True`` is a bounded queue whose ``send`` waits for room.

A stop of either side stops both: when the storage stops, ``get`` hands out what
is left and then raises :class:`~fogverse.errors.SourceExhaustedError`, which ends the
sender gracefully; when a sender's task ends, the storage stops.

The receiving stage commits an input once its item is stored, so items still in
the storage when the process dies are not read again (as in FogVerse). Use one
Consumer stage instead where every input must be delivered at least once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from fogverse.context import Headers, StoredItem
from fogverse.errors import SourceExhaustedError
from fogverse.runtime.runnable import Runnable

__all__ = ["ConsumerStorage"]

DEFAULT_MAXSIZE = 64
"""Items a ``keep_messages=True`` storage holds before ``send`` waits for the sender."""


class ConsumerStorage(Runnable):
    """Mixed into a receiving stage; its outputs go to :meth:`get` instead of Kafka."""

    def __init__(self, keep_messages: bool = False, maxsize: int = DEFAULT_MAXSIZE,
                 **settings: Any) -> None:
        if not hasattr(self, "_stopping"):  # the stage's own __init__ may have run first
            Runnable.__init__(self, **settings)
        if maxsize < 1:
            raise ValueError(f"ConsumerStorage maxsize must be at least 1, got {maxsize}")
        self.keep_messages = keep_messages
        self.maxsize = maxsize if keep_messages else 1
        self.dropped = 0
        """Items replaced by a newer one before a sender took them (live mode)."""
        self._items: deque[StoredItem] = deque()
        self._changed = asyncio.Event()
        self._storage_done = False
        self._abandoned = False
        self._readers: set[asyncio.Task[Any]] = set()

    # -- the receiving side ---------------------------------------------------------

    def encode(self, data: Any) -> Any:
        """Nothing to encode: the item stays in this process."""
        return data

    async def send(self, data: Any, topic: str | None = None, key: bytes | None = None,
                   headers: Headers | None = None, callback: Any = None) -> None:
        """Store ``data`` with the current message's context."""
        item = StoredItem(data, self.message, self._send_extra(data))
        if not self.keep_messages:
            if self._items:
                self._items.popleft()
                self.dropped += 1
        else:
            await self._wait(lambda: len(self._items) < self.maxsize or self._abandoned)
            if self._abandoned:
                # No sender will ever take it; it is counted, not silently lost.
                self.dropped += 1
                return
        self._items.append(item)
        self._notify()

    def _send_extra(self, data: Any) -> dict[str, Any]:
        """FogVerse's hook for extra values travelling with an item (``item['extra']``)."""
        extra = getattr(self, "_get_send_extra", None)
        value = extra(data) if callable(extra) else None
        return dict(value) if isinstance(value, dict) else {}

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            self._storage_done = True
            self._notify()

    # -- the sending side -------------------------------------------------------------

    async def get(self) -> StoredItem:
        """The next item; waits for one. Raises SourceExhaustedError once the storage
        stopped and is empty."""
        self._watch_reader()
        await self._wait(lambda: bool(self._items) or self._storage_done)
        if not self._items:
            raise SourceExhaustedError(f"{self.name} stopped")
        item = self._items.popleft()
        self._notify()
        return item

    def get_nowait(self) -> StoredItem | None:
        """The next item, or None when there is none right now."""
        if not self._items:
            return None
        item = self._items.popleft()
        self._notify()
        return item

    def qsize(self) -> int:
        return len(self._items)

    def _watch_reader(self) -> None:
        """Stop the storage when the task reading it ends (the sender stopped)."""
        task = asyncio.current_task()
        if task is None or task in self._readers:
            return
        self._readers.add(task)
        task.add_done_callback(self._reader_done)

    def _reader_done(self, task: asyncio.Task[Any]) -> None:
        self._readers.discard(task)
        if not self._readers:
            self._abandoned = True
            self.stop()
            self._notify()

    # -- waiting ------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    async def _wait(self, ready: Any) -> None:
        # Every change sets the event and wakes all waiters; each checks its own
        # condition again, so one event serves both sides.
        while not ready():
            self._changed.clear()
            await self._changed.wait()
