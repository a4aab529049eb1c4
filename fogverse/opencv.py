"""OpenCVConsumer: a source stage reading frames from a camera, a video file or a stream.

Chosen by FogVerse's ``DEVICE`` setting (environment first, then the attribute):
a camera index (``0``), a file path, or a stream URL (``rtsp://``, ``http://``).
Frames are read on a thread of their own, never on the event loop. At the end of
a file the stage stops gracefully (or starts over with ``loop_video``). A camera
or stream that stops answering is reopened with growing backoff.

In live mode (the default for cameras and streams) only the newest frame waits
for the stage: a slow pipeline gets the current picture instead of a growing
backlog, and the frames it never saw are counted in ``frames_dropped``. Files are
read completely by default, each frame waiting for the stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from fogverse.constants import ENV_DEVICE
from fogverse.errors import ConfigError, SourceExhaustedError
from fogverse.frames import require_cv2
from fogverse.runtime.producer import Producer

__all__ = ["OpenCVConsumer"]

log = logging.getLogger("fogverse.opencv")

_TRUE = ("1", "true", "yes", "on")
_WAIT_SLICE = 0.1
"""How long receive() waits for a frame before giving the stage a turn to stop."""


def _setting(stage: object, env: str, default: Any = None) -> Any:
    value = os.environ.get(env)
    if value is not None and value != "":
        return value
    return getattr(stage, env.lower(), default)


def parse_device(value: object) -> int | str:
    """A camera index for digits, else the path or URL as given."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _is_file(device: int | str) -> bool:
    return isinstance(device, str) and "://" not in device


class _FrameBuffer:
    """Frames from the reader thread to the event loop: newest-only or bounded."""

    def __init__(self, live: bool, size: int) -> None:
        self.live = live
        self.size = 1 if live else size
        self.frames: deque[Any] = deque()
        self.cond = threading.Condition()
        self.dropped = 0

    def put(self, frame: Any, stopped: threading.Event) -> None:
        with self.cond:
            if self.live:
                if self.frames:
                    self.frames.popleft()
                    self.dropped += 1
            else:
                while len(self.frames) >= self.size and not stopped.is_set():
                    self.cond.wait(_WAIT_SLICE)
            self.frames.append(frame)

    def take(self) -> Any:
        with self.cond:
            if not self.frames:
                return None
            frame = self.frames.popleft()
            self.cond.notify_all()
            return frame


class OpenCVConsumer(Producer):
    """Frames as the stage's input. Settings (attribute or environment variable):

    ``device`` (DEVICE), ``frame_width`` / ``frame_height`` (FRAME_WIDTH,
    FRAME_HEIGHT: frames of another size are resized), ``frame_rate`` (FRAME_RATE:
    at most this many frames per second; a file is read at its own rate in live
    mode), ``live`` (LIVE), ``loop_video`` (LOOP_VIDEO), ``reconnect_backoff``
    and ``reconnect_max_backoff`` (seconds), ``frame_buffer`` (frames waiting in
    non-live mode).
    """

    reconnect_backoff: float = 0.5
    reconnect_max_backoff: float = 10.0
    frame_buffer: int = 8

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, executor: Any = None,
                 **settings: Any) -> None:
        if not hasattr(self, "_stopping"):
            Producer.__init__(self, loop=loop, **settings)
        self._executor = executor
        self._device = parse_device(_setting(self, ENV_DEVICE, 0))
        self.frames_read = 0
        self.reconnects = 0
        self._buffer: _FrameBuffer | None = None
        self._reader: threading.Thread | None = None
        self._reader_stop = threading.Event()
        self._source_end: BaseException | str | None = None
        self._frame_ready = asyncio.Event()
        # FogVerse opened the device here, so code may call self.consumer.set(...)
        # in its __init__; a stream that is down now is retried once running.
        self.consumer = getattr(self, "consumer", None) or self._open()

    # -- settings -----------------------------------------------------------------------

    @property
    def frames_dropped(self) -> int:
        """Frames read but replaced by a newer one before the stage took them (live mode)."""
        return 0 if self._buffer is None else self._buffer.dropped

    def _live(self) -> bool:
        value = _setting(self, "LIVE", None)
        if value is None:
            return not _is_file(self._device)
        return value if isinstance(value, bool) else str(value).lower() in _TRUE

    def _number(self, env: str) -> float | None:
        value = _setting(self, env, None)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1
        if number <= 0:
            raise ConfigError(f"{env.lower()} ({env})", value, "must be a positive number")
        return number

    def _open(self) -> Any:
        cv2 = require_cv2()
        capture = cv2.VideoCapture(self._device)
        width, height = self._number("FRAME_WIDTH"), self._number("FRAME_HEIGHT")
        rate = self._number("FRAME_RATE")
        if capture.isOpened() and not _is_file(self._device):
            if width and height:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if rate:
                capture.set(cv2.CAP_PROP_FPS, rate)
        return capture

    # -- the lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        if _is_file(self._device) and not self.consumer.isOpened():
            raise ConfigError(f"device ({ENV_DEVICE})", self._device,
                              "cannot open this video file (missing, or no codec for it)")
        try:
            await super().run()
        finally:
            await self._stop_reader()

    async def _stop_reader(self) -> None:
        self._reader_stop.set()
        reader = self._reader
        if reader is not None:
            if self._buffer is not None:
                with self._buffer.cond:
                    self._buffer.cond.notify_all()
            await asyncio.to_thread(reader.join)
        self.close_consumer()

    def close_consumer(self) -> None:
        """Release the camera or file (FogVerse's name)."""
        if self.consumer is not None:
            self.consumer.release()

    async def receive(self) -> Any:
        """The next frame; None now and then so the stage can notice a stop."""
        self._ensure_reader()
        buffer = self._buffer
        assert buffer is not None
        frame = buffer.take()
        if frame is not None:
            return frame
        if self._source_end is not None:
            return self._source_ended()
        self._frame_ready.clear()
        frame = buffer.take()  # a frame may have come between take() and clear()
        if frame is None:
            try:
                await asyncio.wait_for(self._frame_ready.wait(), _WAIT_SLICE)
            except TimeoutError:
                return None
            frame = buffer.take()
        return frame

    def _source_ended(self) -> Any:
        done = self._source_end
        if isinstance(done, BaseException):
            raise done
        raise SourceExhaustedError(f"{done}: {self._device}")

    def _ensure_reader(self) -> None:
        if self._reader is not None:
            return
        self._buffer = _FrameBuffer(self._live(), self.frame_buffer)
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(
            target=self._read_frames, args=(loop,), name=f"{self.name}-frames", daemon=True
        )
        self._reader.start()

    # -- the reader thread ------------------------------------------------------------

    def _read_frames(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._read_until_stopped(loop)
        except BaseException as exc:  # handed to the stage, which reports it
            self._source_end = exc
        finally:
            if self._source_end is None:
                self._source_end = "stopped"
            self._wake(loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        # The loop may close meanwhile; the stage is gone then and needs no wake-up.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._frame_ready.set)

    def _read_until_stopped(self, loop: asyncio.AbstractEventLoop) -> None:
        cv2 = require_cv2()
        buffer = self._buffer
        assert buffer is not None
        pacer = _Pacer(self._period(cv2))
        size = self._target_size()
        backoff = self.reconnect_backoff
        stop = self._reader_stop
        while not stop.is_set():
            ok, frame = self.consumer.read() if self.consumer.isOpened() else (False, None)
            if not ok:
                if _is_file(self._device):
                    if self._rewind(cv2):
                        continue
                    self._source_end = "end of video"
                    return
                backoff = self._reconnect(backoff)
                continue
            backoff = self.reconnect_backoff
            self.frames_read += 1
            buffer.put(_sized(cv2, frame, size), stop)
            self._wake(loop)
            pacer.wait(stop)

    def _period(self, cv2: Any) -> float:
        rate = self._number("FRAME_RATE")
        if rate is None and _is_file(self._device) and self._live():
            # A file played "live" runs at its own speed, like the camera it stands for.
            rate = self.consumer.get(cv2.CAP_PROP_FPS) or None
        return 1.0 / rate if rate else 0.0

    def _rewind(self, cv2: Any) -> bool:
        loop_video = _setting(self, "LOOP_VIDEO", False)
        if not (loop_video is True or str(loop_video).lower() in _TRUE):
            return False
        return bool(self.consumer.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def _reconnect(self, backoff: float) -> float:
        log.warning("%s: %s stopped answering; reopening in %.1fs", self.name, self._device,
                    backoff)
        self.reconnects += 1
        self.consumer.release()
        if self._reader_stop.wait(backoff):
            return backoff
        self.consumer = self._open()
        return min(backoff * 2, self.reconnect_max_backoff)

    def _target_size(self) -> tuple[int, int] | None:
        width, height = self._number("FRAME_WIDTH"), self._number("FRAME_HEIGHT")
        return (int(width), int(height)) if width and height else None


def _sized(cv2: Any, frame: Any, size: tuple[int, int] | None) -> Any:
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class _Pacer:
    """Keeps reads at most one per ``period`` seconds, without drifting."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.next_at = time.monotonic()

    def wait(self, stop: threading.Event) -> None:
        if not self.period:
            return
        self.next_at += self.period
        delay = self.next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        elif delay < -self.period:
            self.next_at = time.monotonic()  # fell behind: do not burst to catch up

