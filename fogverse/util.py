"""FogVerse's helper functions, with their names and signatures, minus pickle.

Code written for FogVerse imports these from ``fogverse.util``. Differences on
purpose: ``bytes_to_numpy`` refuses pickled (object) arrays, ``compress_encoding``
returns the image file's bytes as they are (FogVerse wrapped them in a ``.npy``;
``recover_encoding`` still reads that form), and ``size_kb`` measures payload
bytes rather than walking every Python object.
"""

from __future__ import annotations

import base64
import io
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fogverse.errors import DecodeError

__all__ = [
    "DATETIME_FORMAT",
    "bytes_to_numpy",
    "calc_datetime",
    "compress_encoding",
    "get_cam_id",
    "get_config",
    "get_header",
    "get_timestamp",
    "get_timestamp_str",
    "numpy_to_base64_url",
    "numpy_to_bytes",
    "recover_encoding",
    "size_kb",
    "timestamp_to_datetime",
]

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
"""FogVerse's timestamp header format (the ``timestamp`` header of its frames)."""

_NPY_MAGIC = b"\x93NUMPY"


def get_cam_id() -> str:
    """``cam_<CAM_ID>``, or ``cam_<random uuid>`` when ``CAM_ID`` is not set."""
    return f"cam_{os.getenv('CAM_ID') or uuid.uuid4()}"


def get_config(config_name: str, cls: object = None, default: Any = None) -> Any:
    """The environment variable ``config_name``, else ``cls.<config_name lowercased>``."""
    value = os.environ.get(config_name)
    if value is not None:
        return value
    if cls is None:
        return default
    return getattr(cls, config_name.lower(), default)


def get_header(
    headers: Iterable[tuple[str, Any]] | None,
    key: str | None,
    default: Any = None,
    decoder: Callable[[Any], Any] | None = None,
) -> Any:
    """The first header named ``key``: decoded with ``decoder``, else bytes as text."""
    if headers is None or key is None:
        return default
    for name, value in headers:
        if name == key:
            if decoder is not None:
                return decoder(value)
            if isinstance(value, bytes):
                return value.decode(errors="replace")
            return value
    return default


# -- time ----------------------------------------------------------------------------


def get_timestamp(utc: bool = True) -> datetime:
    """Now, as a naive datetime (UTC by default, as FogVerse's headers carry it)."""
    if utc:
        return datetime.now(UTC).replace(tzinfo=None)
    return datetime.now()


def get_timestamp_str(
    date: datetime | None = None, utc: bool = True, format: str = DATETIME_FORMAT
) -> str:
    """``date`` (default: now) in FogVerse's header format."""
    return (date or get_timestamp(utc=utc)).strftime(format)


def timestamp_to_datetime(timestamp: str | bytes, format: str = DATETIME_FORMAT) -> datetime:
    if isinstance(timestamp, bytes):
        timestamp = timestamp.decode()
    return datetime.strptime(timestamp, format)


def calc_datetime(
    start: datetime | str | bytes | None,
    end: datetime | str | bytes | None = None,
    format: str = DATETIME_FORMAT,
    decimals: int = 2,
    utc: bool = True,
) -> float:
    """Milliseconds from ``start`` to ``end`` (default now); -1 when there is no start."""
    if start is None:
        return -1
    if end is None:
        end = get_timestamp(utc=utc)
    elif isinstance(end, str | bytes):
        end = timestamp_to_datetime(end, format)
    if isinstance(start, str | bytes):
        start = timestamp_to_datetime(start, format)
    return round((end - start).total_seconds() * 1e3, decimals)


# -- sizes ---------------------------------------------------------------------------


def _payload_bytes(obj: Any) -> int:
    if isinstance(obj, bytes | bytearray):
        return len(obj)
    if isinstance(obj, memoryview):
        return obj.nbytes
    if isinstance(obj, str):
        return len(obj.encode())
    nbytes = getattr(obj, "nbytes", None)  # NumPy arrays, without importing numpy
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(obj, Mapping):
        return sum(_payload_bytes(k) + _payload_bytes(v) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return sum(_payload_bytes(item) for item in obj)
    return sys.getsizeof(obj)


def size_kb(obj: Any, decimals: int = 3) -> float:
    """The size of ``obj``'s data in kilobytes (1000 bytes), for logs."""
    return round(_payload_bytes(obj) / 1e3, decimals)


# -- NumPy without pickle ------------------------------------------------------------


def _numpy() -> Any:
    from fogverse.frames import require_numpy

    return require_numpy()


def numpy_to_bytes(arr: Any) -> bytes:
    """The ``.npy`` bytes of ``arr``; object arrays are refused (they would need pickle)."""
    np = _numpy()
    buffer = io.BytesIO()
    try:
        np.save(buffer, np.asarray(arr), allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"cannot turn this array into bytes without pickle: {exc}") from exc
    return buffer.getvalue()


def bytes_to_numpy(bbytes: bytes) -> Any:
    """The array in ``.npy`` bytes (as FogVerse's ``numpy_to_bytes`` wrote them), never
    unpickling: a pickled payload raises DecodeError."""
    np = _numpy()
    try:
        return np.load(io.BytesIO(bbytes), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DecodeError(f"not a .npy array (pickled arrays are refused): {exc}") from exc


# -- compressed images ---------------------------------------------------------------


def compress_encoding(img: Any, encoding: str, *args: Any) -> bytes:
    """``img`` compressed as ``encoding`` ('jpg', 'png', 'webp'); ``args`` go to
    ``cv2.imencode`` as FogVerse passed them."""
    from fogverse.frames import encode_image

    return encode_image(img, encoding, *args)


def recover_encoding(img_bytes: bytes) -> Any:
    """The image in ``img_bytes``: a compressed file, or FogVerse's ``.npy``-wrapped one."""
    from fogverse.frames import decode_image

    if img_bytes[: len(_NPY_MAGIC)] == _NPY_MAGIC:
        img_bytes = bytes_to_numpy(img_bytes).tobytes()
    return decode_image(img_bytes)


def numpy_to_base64_url(img: Any, encoding: str, *args: Any) -> str:
    """``img`` as a ``data:image/<encoding>;base64,...`` URL, ready for a browser."""
    b64 = base64.b64encode(compress_encoding(img, encoding, *args)).decode()
    return f"data:image/{encoding};base64,{b64}"
