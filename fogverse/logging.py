"""FogVerse's logging: ``CsvLogging`` (a CSV row per message) and ``FogVerseLogging``.

``class MyStage(CsvLogging, Producer)`` writes ``logs/log_MyStage.csv`` next to the
module that defines the stage, with FogVerse's columns first and the user's
``add_header`` columns after them (filled from ``self._log_data``). Step times come
from the stage's own profiling; rows are buffered and written in blocks, so the
mixin is cheap enough to leave on. A row is written when its output is
acknowledged by the broker (so ``offset sent`` is known), or when the stage's own
``send`` returns for a sink.
"""

from __future__ import annotations

import csv
import inspect
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from fogverse.context import Headers, MessageContext, StoredItem
from fogverse.runtime.flight import Delivery, InFlight
from fogverse.util import calc_datetime, get_header, size_kb

__all__ = [
    "CSV_COLUMNS",
    "FOGV_CSV",
    "FOGV_FILE",
    "FOGV_STDOUT",
    "CsvLogging",
    "FogVerseLogging",
]

CSV_COLUMNS: tuple[str, ...] = (
    "topic from", "topic to", "frame", "offset received",
    "frame delay (ms)", "msg creation delay (ms)", "consume time (ms)",
    "size data received (KB)", "decode time (ms)", "size data decoded (KB)",
    "process time (ms)", "size data processed (KB)", "encode time (ms)",
    "size data encoded (KB)", "send time (ms)", "size data sent (KB)", "offset sent",
)
"""FogVerse's per-message columns, in its order (after ``asctime`` and ``name``)."""

FOGV_STDOUT = logging.INFO + 3
FOGV_CSV = logging.INFO + 2
FOGV_FILE = logging.INFO + 1

_DATEFMT = "%Y/%m/%d %H:%M:%S"
_FLUSH_ROWS = 200
_FLUSH_SECONDS = 1.0


def _log_dir(owner: type, dirname: str | Path) -> Path:
    """FogVerse puts logs beside the module that defines the class."""
    path = Path(dirname)
    if path.is_absolute():
        return path
    try:
        return Path(inspect.getfile(owner)).resolve().parent / path
    except (TypeError, OSError):  # classes made in __main__ of an interactive session
        return Path.cwd() / path


def _asctime(datefmt: str) -> str:
    now = time.time()
    return f"{time.strftime(datefmt, time.localtime(now))}.{int(now % 1 * 1000):03d}"


class CsvFile:
    """A CSV file written in blocks; safe to write from delivery callbacks on any thread."""

    def __init__(self, path: Path, header: Sequence[str], mode: str = "w",
                 delimiter: str = ",") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = mode == "w" or not path.exists() or path.stat().st_size == 0
        self.path = path
        self._file: IO[str] = path.open(mode, newline="")
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter)
        self._lock = threading.Lock()
        self._rows = 0
        self._flushed_at = time.monotonic()
        if fresh:
            self._writer.writerow(header)
            self.flush()

    def row(self, values: Iterable[object]) -> None:
        with self._lock:
            self._writer.writerow(values)
            self._rows += 1
            due = (self._rows >= _FLUSH_ROWS
                   or time.monotonic() - self._flushed_at >= _FLUSH_SECONDS)
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            self._file.write(self._buffer.getvalue())
            self._file.flush()
            self._buffer.seek(0)
            self._buffer.truncate()
            self._rows = 0
            self._flushed_at = time.monotonic()

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._file.close()


def _cell(value: Any) -> Any:
    # FogVerse users filled a pandas frame: ``self._log_data['x'] = [value]``.
    if isinstance(value, list | tuple) and len(value) == 1:
        return value[0]
    return value


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class CsvLogging:
    """Mixin: one CSV row per message, FogVerse's columns then ``add_header``.

    Put it first: ``class MyStage(CsvLogging, Producer)`` and call
    ``CsvLogging.__init__(self)`` as FogVerse code does. Fill your own columns with
    ``self._log_data['my column'] = value`` anywhere during the message.
    """

    _log_data: dict[str, Any]
    _flight: InFlight | None
    message: MessageContext | None

    def __init__(
        self,
        df_header: Sequence[str] = CSV_COLUMNS,
        name: str | None = None,
        level: int = logging.INFO,
        dirname: str | Path = "logs",
        filename: str | None = None,
        mode: str = "w",
        fmt: str | None = None,
        delimiter: str = ",",
        datefmt: str = _DATEFMT,
        csv_header: Sequence[str] = ("asctime", "name"),
        add_header: Sequence[str] = (),
        handler: object = None,
        formatter: object = None,
    ) -> None:
        # level/fmt/handler/formatter are FogVerse's logging-module knobs; the rows
        # here are written directly, so they are accepted and have no effect.
        self._log_name = name or type(self).__name__
        self.df_header = [*df_header, *add_header]
        filename = filename or f"log_{self._log_name}.csv".replace("log_log", "log")
        self._datefmt = datefmt
        self._csv = CsvFile(_log_dir(type(self), dirname) / filename,
                            [*csv_header, *self.df_header], mode, delimiter)
        self._log_data = {}
        self._receive_started: float | None = None

    # -- the steps (FogVerse's hook names) --------------------------------------------

    def _before_receive(self) -> None:
        self._log_data = {}
        self._receive_started = time.perf_counter()

    def _after_receive(self, data: Any) -> None:
        if self._receive_started is not None:
            self._log_data["consume time (ms)"] = _ms(time.perf_counter() - self._receive_started)
        self._log_data["size data received (KB)"] = size_kb(
            data.data if isinstance(data, StoredItem) else data
        )

    def _before_decode(self, data: Any) -> None:
        self._log_data = {"size data received (KB)": size_kb(data)}

    def _after_decode(self, data: Any) -> None:
        self._log_data["decode time (ms)"] = _ms(self._step_time("decode"))
        self._log_data["size data decoded (KB)"] = size_kb(data)

    def _after_process(self, result: Any) -> None:
        self._log_data["process time (ms)"] = _ms(self._step_time("process"))
        self._log_data["size data processed (KB)"] = size_kb(result)

    def _after_encode(self, data: Any) -> None:
        self._log_data["encode time (ms)"] = _ms(self._step_time("encode"))
        self._log_data["size data encoded (KB)"] = size_kb(data)

    def _step_time(self, step: str) -> float | None:
        flight = getattr(self, "_flight", None)
        timings = None if flight is None else flight.timings
        return None if timings is None else timings.get(step)

    def _in_flight(self, ctx: MessageContext, delivery: Delivery) -> InFlight:
        # Step times per message come from the stage's own profiling of each step.
        flight: InFlight = super()._in_flight(ctx, delivery)  # type: ignore[misc]
        if flight.timings is None:
            flight.timings = {}
        return flight

    async def send(self, data: bytes, topic: str | None = None, key: bytes | None = None,
                   headers: Headers | None = None,
                   callback: Callable[..., None] | None = None) -> None:
        row = self._message_row(data, topic, headers)
        started = time.perf_counter()
        to_kafka = getattr(self, "producer", None) is not None
        if to_kafka:
            callback = _RowOnAck(self, row, started, callback)
        await super().send(data, topic, key, headers, callback)  # type: ignore[misc]
        if not to_kafka:
            row["send time (ms)"] = _ms(time.perf_counter() - started)
            self._write_row(row)

    async def close_producer(self) -> None:
        try:
            await super().close_producer()  # type: ignore[misc]
        finally:
            self._csv.flush()

    # -- rows ---------------------------------------------------------------------------

    def _message_row(self, data: Any, topic: str | None, headers: Headers | None) -> dict[str, Any]:
        row = dict(self._log_data)
        self._log_data = {}
        ctx = self.message
        sent_headers = headers if headers is not None else (ctx.headers if ctx else [])
        row["topic to"] = topic or getattr(self, "producer_topic", None)
        row["size data sent (KB)"] = size_kb(data)
        row["frame"] = int(get_header(sent_headers, "frame", default=-1))
        if ctx is not None:
            row["topic from"] = ctx.topic
            row["offset received"] = -1 if ctx.offset is None else ctx.offset
            stamp = get_header(ctx.headers, "timestamp")
            row["frame delay (ms)"] = -1 if stamp is None else _safe_delay(stamp)
            if ctx.timestamp:
                row["msg creation delay (ms)"] = round(time.time() * 1000 - ctx.timestamp, 2)
        row.setdefault("offset received", -1)
        row.setdefault("frame delay (ms)", -1)
        return row

    def _write_row(self, row: Mapping[str, Any]) -> None:
        self._csv.row([_asctime(self._datefmt), self._log_name,
                       *(_cell(row.get(column)) for column in self.df_header)])


def _safe_delay(stamp: str) -> float:
    try:
        return calc_datetime(stamp)
    except ValueError:
        return -1


class _RowOnAck:
    """Delivery callback: completes the message's row with the broker's offset."""

    __slots__ = ("logging", "row", "started", "user")

    def __init__(self, owner: CsvLogging, row: dict[str, Any], started: float,
                 user: Callable[..., None] | None) -> None:
        self.logging = owner
        self.row = row
        self.started = started
        self.user = user

    def __call__(self, err: Any, msg: Any) -> None:
        try:
            if self.user is not None:
                self.user(err, msg)
        finally:
            self.row["send time (ms)"] = _ms(time.perf_counter() - self.started)
            self.row["offset sent"] = msg.offset() if err is None else -1
            self.logging._write_row(self.row)


class FogVerseLogging:
    """FogVerse's three loggers in one: ``std_log`` (console and file), ``file_log``
    and ``csv_log`` (a row of values under ``csv_header``), all under ``dirname``."""

    def __init__(
        self,
        name: str | None = None,
        dirname: str | Path = "logs",
        csv_header: Sequence[str] = (),
        level: int = FOGV_STDOUT,
        std_log_kwargs: Mapping[str, Any] | None = None,
        csv_log_kwargs: Mapping[str, Any] | None = None,
        file_log_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        for number, label in ((FOGV_STDOUT, "FOGV_STDOUT"), (FOGV_CSV, "FOGV_CSV"),
                              (FOGV_FILE, "FOGV_FILE")):
            logging.addLevelName(number, label)
        self.name = name or "fogverse"
        folder = Path(dirname)
        folder.mkdir(parents=True, exist_ok=True)
        self._std_log = logging.getLogger(f"std_{self.name}")
        self._file_log = logging.getLogger(f"file_{self.name}")
        self._file_log.propagate = False
        if not self._file_log.handlers:
            handler = logging.FileHandler(folder / f"log_file_{self.name}.txt", mode="w")
            handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
            self._file_log.addHandler(handler)
        self._csv = CsvFile(folder / f"log_csv_{self.name}.csv",
                            ["asctime", "name", *csv_header])
        self.level = level
        self.setLevel(level)

    def setLevel(self, level: int) -> None:  # FogVerse's spelling
        self.level = level
        self._std_log.setLevel(level)
        self._file_log.setLevel(level)

    def std_log(self, message: str, *args: Any) -> None:
        self._std_log.log(FOGV_STDOUT, message, *args)
        self.file_log(message, *args)

    def file_log(self, message: str, *args: Any) -> None:
        self._file_log.log(FOGV_FILE, message, *args)

    def csv_log(self, message: Iterable[object] | str, *args: Any) -> None:
        if self.level > FOGV_CSV:
            return
        values = [message % args if args else message] if isinstance(message, str) else message
        self._csv.row([_asctime(_DATEFMT), f"csv_{self.name}", *values])
        self._csv.flush()

