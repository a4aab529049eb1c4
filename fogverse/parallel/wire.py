"""Frames between a parallel stage and its worker processes.

One stream socket per worker. A frame is a fixed header then two byte strings:

    u32 length of the rest | u8 kind | u64 job id | f64 seconds | u16 meta length | meta | data

``meta`` is short text (a content type, a step name); ``data`` is a payload.
Only the first frame a worker receives is a pickle (the Processor, from its own
parent); message payloads stay the bytes Kafka delivered.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["MAX_FRAME", "Frame", "FrameBuffer", "Kind", "encode_frame"]

_HEAD = struct.Struct("!IBQdH")
_LEN = struct.Struct("!I")
_AFTER_LENGTH = _HEAD.size - _LEN.size
MAX_FRAME = 0xFFFFFFFF - _AFTER_LENGTH
"""The largest meta + data one frame carries (4 GiB; Kafka's limits are far lower)."""


class Kind(IntEnum):
    # parent -> worker
    INIT = 1
    JOB = 2
    STOP = 3
    # worker -> parent
    READY = 10
    RESULT = 11
    EMPTY = 12
    """process() returned None: nothing to send for this input."""
    ERROR = 13
    SETUP_FAILED = 14


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    job: int
    seconds: float
    meta: str
    data: bytes


def encode_frame(kind: Kind, job: int = 0, meta: str = "", data: bytes = b"",
                 seconds: float = 0.0) -> bytes:
    raw_meta = meta.encode()
    size = _AFTER_LENGTH + len(raw_meta) + len(data)
    if size > 0xFFFFFFFF:
        raise ValueError(f"a payload of {len(data)} bytes is too large for one frame")
    return b"".join((_HEAD.pack(size, kind, job, seconds, len(raw_meta)), raw_meta, data))


class FrameBuffer:
    """Bytes in as they arrive, whole frames out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> list[Frame]:
        """Every whole frame received so far, in order; a partial one stays."""
        buf = self._buf
        out: list[Frame] = []
        pos = 0
        while len(buf) - pos >= _HEAD.size:
            size, kind, job, seconds, meta_len = _HEAD.unpack_from(buf, pos)
            end = pos + _LEN.size + size
            if len(buf) < end:
                break
            meta_at = pos + _HEAD.size
            data_at = meta_at + meta_len
            out.append(Frame(Kind(kind), job, seconds, buf[meta_at:data_at].decode(),
                             bytes(buf[data_at:end])))
            pos = end
        # Trim once per call: trimming per frame would copy the rest each time.
        del buf[:pos]
        return out

    def __len__(self) -> int:
        return len(self._buf)
