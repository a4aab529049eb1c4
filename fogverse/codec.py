"""Turning data into bytes and back, without pickle.

Every message carries a content-type header so a reader never guesses. msgpack is
the default; NumPy arrays travel as a msgpack extension holding dtype, shape and
raw bytes. Object arrays are refused: rebuilding them would need pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import msgpack

from fogverse.constants import CT_BYTES, CT_MSGPACK, CT_TEXT
from fogverse.errors import DecodeError, EncodeError, MissingDependencyError

__all__ = ["NDARRAY_EXT_CODE", "Codec", "DefaultCodec", "MsgpackCodec", "RawCodec"]

NDARRAY_EXT_CODE = 42
"""msgpack extension type code for NumPy arrays (dtype string, shape, raw bytes)."""


@runtime_checkable
class Codec(Protocol):
    """What a stage needs to turn data into bytes and back."""

    def encode(self, data: Any) -> tuple[bytes, str]:
        """Return the payload and its content type."""
        ...

    def decode(self, payload: bytes, content_type: str | None) -> Any:
        """Return the data for a payload received with ``content_type``."""
        ...


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - exercised only without numpy
        raise MissingDependencyError(
            "a NumPy array arrived but numpy is not installed: pip install 'fogverse[numpy]'"
        ) from exc
    return numpy


def _pack_default(obj: Any) -> Any:
    np_mod = _numpy_if_loaded()
    if np_mod is not None:
        if isinstance(obj, np_mod.ndarray):
            return _pack_ndarray(obj, np_mod)
        if isinstance(obj, np_mod.generic):
            return obj.item()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} with msgpack")


def _numpy_if_loaded() -> Any:
    # Only arrays the user made can reach the encoder, so numpy is already
    # imported if one is there; never import it just to check.
    import sys

    return sys.modules.get("numpy")


def _pack_ndarray(arr: Any, np_mod: Any) -> msgpack.ExtType:
    if arr.dtype.hasobject:
        raise TypeError("NumPy arrays of Python objects cannot be sent (they would need pickle)")
    # ascontiguousarray would turn a 0-d array into 1-d; copy keeps the shape.
    contiguous = arr if arr.flags.c_contiguous else arr.copy(order="C")
    body = msgpack.packb(
        [contiguous.dtype.str, list(contiguous.shape), contiguous.tobytes()], use_bin_type=True
    )
    return msgpack.ExtType(NDARRAY_EXT_CODE, body)


def _ext_hook(code: int, data: bytes) -> Any:
    if code != NDARRAY_EXT_CODE:
        return msgpack.ExtType(code, data)
    np_mod = _numpy()
    dtype_str, shape, raw = msgpack.unpackb(data, raw=False)
    dtype = np_mod.dtype(dtype_str)
    if dtype.hasobject:
        raise DecodeError("refusing a NumPy array of Python objects")
    return np_mod.frombuffer(raw, dtype=dtype).reshape(shape)


class MsgpackCodec:
    """msgpack for everything, NumPy arrays included."""

    content_type = CT_MSGPACK

    def __init__(self) -> None:
        self._packer = msgpack.Packer(default=_pack_default, use_bin_type=True)

    # The Packer is a C object that pickle cannot copy. Parallel stages send the
    # codec to their worker processes once, at start; each builds its own Packer.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_packer", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._packer = msgpack.Packer(default=_pack_default, use_bin_type=True)

    def encode(self, data: Any) -> tuple[bytes, str]:
        try:
            return self._packer.pack(data), CT_MSGPACK
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(str(exc)) from exc

    def decode(self, payload: bytes, content_type: str | None) -> Any:
        return self._unpack(payload)

    @staticmethod
    def _unpack(payload: bytes) -> Any:
        try:
            return msgpack.unpackb(payload, raw=False, ext_hook=_ext_hook, strict_map_key=False)
        except DecodeError:
            raise
        except Exception as exc:  # msgpack raises several unrelated types
            raise DecodeError(f"not valid msgpack: {exc}") from exc


class RawCodec:
    """Bytes in, bytes out: for stages that handle encoded frames themselves."""

    def encode(self, data: Any) -> tuple[bytes, str]:
        if isinstance(data, bytes | bytearray | memoryview):
            return bytes(data), CT_BYTES
        raise EncodeError(f"RawCodec sends bytes only, got {type(data).__name__}")

    def decode(self, payload: bytes, content_type: str | None) -> Any:
        return payload


_TEXT_PREFIX = "text/"
_IMAGE_PREFIX = "image/"


class DefaultCodec(MsgpackCodec):
    """msgpack, except that bytes and str pass through as themselves.

    Decoding follows the content-type header; a message with none (written by a
    client that is not ours) is handed over as raw bytes rather than guessed at.
    """

    def encode(self, data: Any) -> tuple[bytes, str]:
        if isinstance(data, bytes):
            return data, CT_BYTES
        if isinstance(data, str):
            return data.encode(), CT_TEXT
        return super().encode(data)

    def decode(self, payload: bytes, content_type: str | None) -> Any:
        if content_type == CT_MSGPACK:  # the common case, without the table lookup
            return self._unpack(payload)
        decoder = _DECODERS.get(content_type or CT_BYTES)
        if decoder is not None:
            return decoder(self, payload)
        if content_type is not None and content_type.startswith(_TEXT_PREFIX):
            return _decode_text(self, payload)
        if content_type is not None and content_type.startswith(_IMAGE_PREFIX):
            # Compressed video frames: decoded here so a receiving stage needs no
            # codec of its own (OpenCV is imported only when a frame arrives).
            from fogverse.frames import decode_image, is_image

            if is_image(content_type):
                return decode_image(payload)
        raise DecodeError(f"unknown content type {content_type!r}")


def _decode_text(_: DefaultCodec, payload: bytes) -> str:
    try:
        return payload.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"text payload is not UTF-8: {exc}") from exc


_DECODERS: dict[str, Callable[[DefaultCodec, bytes], Any]] = {
    CT_MSGPACK: lambda _codec, payload: MsgpackCodec._unpack(payload),
    CT_BYTES: lambda _codec, payload: payload,
    CT_TEXT: _decode_text,
}
