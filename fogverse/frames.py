"""Video frames as compressed images: JPEG, PNG or WebP, marked by content type.

A 640x480 colour frame is 900 KiB raw and a few tens of KiB as JPEG, which is
what lets a camera's stream cross a fog link at all. The content type travels
with each message, so the receiving stage's default codec turns the bytes back
into a NumPy frame without being told. OpenCV is an optional dependency
(``pip install 'fogverse[video]'``).
"""

from __future__ import annotations

from typing import Any

from fogverse.codec import Codec, DefaultCodec
from fogverse.constants import CT_JPEG, CT_PNG, CT_WEBP
from fogverse.errors import DecodeError, EncodeError, MissingDependencyError

__all__ = [
    "CONTENT_TYPES",
    "FrameCodec",
    "decode_image",
    "encode_image",
    "is_image",
    "require_cv2",
    "require_numpy",
]

CONTENT_TYPES: dict[str, str] = {
    "jpg": CT_JPEG,
    "jpeg": CT_JPEG,
    "png": CT_PNG,
    "webp": CT_WEBP,
}
"""FogVerse's ``encode_encoding`` names and the content type each is sent as."""

DEFAULT_QUALITY = 80
"""JPEG/WebP quality: a tenth of the raw size or less at 640x480, with little visible loss."""
DEFAULT_PNG_COMPRESSION = 1
"""zlib level for PNG: level 1 is several times faster than the default 3 for a little size."""


def require_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise MissingDependencyError(
            "video frames need OpenCV: pip install 'fogverse[video]'"
        ) from exc
    return cv2


def require_numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependencyError(
            "NumPy is not installed: pip install 'fogverse[numpy]'"
        ) from exc
    return numpy


def is_image(content_type: str | None) -> bool:
    return content_type in (CT_JPEG, CT_PNG, CT_WEBP)


def _extension(encoding: str) -> str:
    name = encoding.lower().lstrip(".")
    if name not in CONTENT_TYPES:
        raise EncodeError(
            f"unknown frame encoding {encoding!r}: expected one of {sorted(CONTENT_TYPES)}"
        )
    return name


def _quality_params(cv2: Any, encoding: str, quality: int | None,
                    png_compression: int | None) -> list[int]:
    if encoding in ("jpg", "jpeg"):
        return [cv2.IMWRITE_JPEG_QUALITY, DEFAULT_QUALITY if quality is None else quality]
    if encoding == "webp":
        return [cv2.IMWRITE_WEBP_QUALITY, DEFAULT_QUALITY if quality is None else quality]
    level = DEFAULT_PNG_COMPRESSION if png_compression is None else png_compression
    return [cv2.IMWRITE_PNG_COMPRESSION, level]


def encode_image(img: Any, encoding: str, *args: Any, quality: int | None = None,
                 png_compression: int | None = None) -> bytes:
    """``img`` (a NumPy image) compressed as ``encoding``.

    ``args`` are OpenCV ``imencode`` parameters, as FogVerse passed them; without
    them ``quality`` (JPEG/WebP) or ``png_compression`` apply.
    """
    cv2 = require_cv2()
    ext = _extension(encoding)
    params = list(args[0]) if args else _quality_params(cv2, ext, quality, png_compression)
    np = require_numpy()
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        raise EncodeError(f"a frame must be a 2-D or 3-D NumPy array, got {_describe(img)}")
    if img.dtype != np.uint8 and not (ext == "png" and img.dtype == np.uint16):
        raise EncodeError(f"{ext} frames must be uint8 (PNG also uint16), got {img.dtype}")
    try:
        ok, buffer = cv2.imencode(f".{ext}", img, params)
    except cv2.error as exc:
        raise EncodeError(f"OpenCV could not encode a {img.shape} frame as {ext}: {exc}") from exc
    if not ok:
        raise EncodeError(f"OpenCV could not encode a {img.shape} frame as {ext}")
    return bytes(buffer.data)


def decode_image(payload: bytes) -> Any:
    """The NumPy image in a JPEG/PNG/WebP payload, with the channels it was sent with."""
    cv2 = require_cv2()
    np = require_numpy()
    image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DecodeError(f"not a decodable image ({len(payload)} bytes)")
    return image


def _describe(obj: Any) -> str:
    shape = getattr(obj, "shape", None)
    return f"{type(obj).__name__} of shape {shape}" if shape is not None else type(obj).__name__


class FrameCodec:
    """NumPy frames as compressed images; anything else through ``fallback``.

    ``FrameCodec("jpg", quality=80)`` is what FogVerse's ``encode_encoding = 'jpg'``
    selects. Decoding accepts every image type and hands other content types to
    ``fallback``, so a stage may receive frames and plain messages alike.
    """

    def __init__(self, encoding: str = "jpg", quality: int | None = None,
                 png_compression: int | None = None, fallback: Codec | None = None) -> None:
        self.encoding = _extension(encoding)
        self.content_type = CONTENT_TYPES[self.encoding]
        self.quality = quality
        self.png_compression = png_compression
        if quality is not None and not 0 <= quality <= 100:
            raise ValueError(f"frame quality must be 0-100, got {quality}")
        self.fallback: Codec = fallback if fallback is not None else DefaultCodec()
        self._params: list[int] | None = None

    def encode(self, data: Any) -> tuple[bytes, str]:
        np = require_numpy()
        if not isinstance(data, np.ndarray) or data.ndim not in (2, 3):
            return self.fallback.encode(data)
        if self._params is None:
            self._params = _quality_params(require_cv2(), self.encoding, self.quality,
                                           self.png_compression)
        return encode_image(data, self.encoding, self._params), self.content_type

    def decode(self, payload: bytes, content_type: str | None) -> Any:
        if is_image(content_type):
            return decode_image(payload)
        return self.fallback.decode(payload, content_type)
