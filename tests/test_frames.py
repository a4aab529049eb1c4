"""Frame codecs: JPEG/PNG/WebP with a quality, marked by content type."""

from __future__ import annotations

import numpy as np
import pytest

from fogverse import DefaultCodec, FrameCodec
from fogverse.constants import CT_JPEG, CT_PNG, CT_WEBP
from fogverse.errors import DecodeError, EncodeError


def frame(h: int = 480, w: int = 640) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x % 256, y % 256, (x + y) % 256]).astype(np.uint8)


@pytest.mark.parametrize(("encoding", "content_type"),
                         [("jpg", CT_JPEG), ("png", CT_PNG), ("webp", CT_WEBP)])
def test_frames_round_trip_and_default_codec_decodes_them(encoding: str, content_type: str) -> None:
    img = frame()
    payload, ct = FrameCodec(encoding).encode(img)
    assert ct == content_type
    for receiver in (FrameCodec("jpg"), DefaultCodec()):
        back = receiver.decode(payload, ct)
        assert back.shape == img.shape and back.dtype == np.uint8
        if encoding == "png":
            np.testing.assert_array_equal(back, img)


def test_jpeg_at_quality_80_is_at_least_ten_times_smaller_than_raw() -> None:
    img = frame()
    payload, _ = FrameCodec("jpg", quality=80).encode(img)
    assert len(payload) * 10 <= img.nbytes


def test_lower_quality_means_fewer_bytes() -> None:
    img = frame()
    low, _ = FrameCodec("jpg", quality=20).encode(img)
    high, _ = FrameCodec("jpg", quality=95).encode(img)
    assert len(low) < len(high)


def test_grayscale_frames_keep_one_channel() -> None:
    gray = frame()[:, :, 0]
    payload, ct = FrameCodec("png").encode(gray)
    np.testing.assert_array_equal(DefaultCodec().decode(payload, ct), gray)


def test_non_frames_go_through_the_fallback_codec() -> None:
    codec = FrameCodec("jpg")
    payload, ct = codec.encode({"boxes": [1, 2, 3]})
    assert codec.decode(payload, ct) == {"boxes": [1, 2, 3]}


def test_bad_frames_and_bad_bytes_get_clear_errors() -> None:
    with pytest.raises(EncodeError, match="uint8"):
        FrameCodec("jpg").encode(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(EncodeError, match="unknown frame encoding"):
        FrameCodec("bmpx")
    with pytest.raises(DecodeError, match="not a decodable image"):
        DefaultCodec().decode(b"not an image", CT_JPEG)
    with pytest.raises(ValueError, match="quality"):
        FrameCodec("jpg", quality=101)
