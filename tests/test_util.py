"""FogVerse's helpers in fogverse.util: same names and results, no pickle."""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta

import numpy as np
import pytest

from fogverse.errors import DecodeError
from fogverse.util import (
    bytes_to_numpy,
    calc_datetime,
    compress_encoding,
    get_cam_id,
    get_config,
    get_header,
    get_timestamp,
    get_timestamp_str,
    numpy_to_base64_url,
    numpy_to_bytes,
    recover_encoding,
    size_kb,
)


def frame() -> np.ndarray:
    # Smooth gradients compress like camera images, unlike noise.
    y, x = np.mgrid[0:48, 0:64]
    return np.dstack([x * 4, y * 5, (x + y) * 2]).astype(np.uint8)


def test_get_header_decodes_bytes_and_honours_default_and_decoder() -> None:
    headers = [("cam", b"cam_1"), ("frame", b"7")]
    assert get_header(headers, "cam") == "cam_1"
    assert get_header(headers, "frame", decoder=int) == 7
    assert get_header(headers, "missing", default="x") == "x"
    assert get_header(None, "cam", default=3) == 3


def test_get_cam_id_uses_cam_id_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM_ID", "2")
    assert get_cam_id() == "cam_2"
    monkeypatch.delenv("CAM_ID")
    assert get_cam_id().startswith("cam_") and len(get_cam_id()) > 10


def test_get_config_reads_env_then_attribute_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stage:
        device = "video.mp4"

    monkeypatch.delenv("DEVICE", raising=False)
    assert get_config("DEVICE", Stage) == "video.mp4"
    assert get_config("DEVICE", None, 0) == 0
    monkeypatch.setenv("DEVICE", "1")
    assert get_config("DEVICE", Stage) == "1"


def test_timestamps_round_trip_through_the_header_format() -> None:
    start = get_timestamp() - timedelta(milliseconds=250)
    text = get_timestamp_str(start)
    assert datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f") == start
    elapsed = calc_datetime(text)
    assert 250 <= elapsed < 60_000
    assert calc_datetime(None) == -1
    assert calc_datetime(start, start + timedelta(seconds=1.5)) == 1500.0


def test_numpy_bytes_round_trip_and_read_fogverse_npy() -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(bytes_to_numpy(numpy_to_bytes(arr)), arr)
    buffer = io.BytesIO()
    np.save(buffer, arr)  # what FogVerse's numpy_to_bytes wrote
    np.testing.assert_array_equal(bytes_to_numpy(buffer.getvalue()), arr)


def test_pickled_arrays_are_refused_both_ways() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DecodeError, match="pickle"):
        bytes_to_numpy(buffer.getvalue())
    with pytest.raises(ValueError, match="pickle"):
        numpy_to_bytes(np.array([object()], dtype=object))


def test_compress_and_recover_a_jpeg_frame() -> None:
    img = frame()
    jpeg = compress_encoding(img, "jpg")
    assert jpeg[:2] == b"\xff\xd8"  # a JPEG file, usable outside Python
    back = recover_encoding(jpeg)
    assert back.shape == img.shape
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 3


def test_recover_reads_fogverse_npy_wrapped_images() -> None:
    img = frame()
    wrapped = numpy_to_bytes(np.frombuffer(compress_encoding(img, "png"), dtype=np.uint8))
    np.testing.assert_array_equal(recover_encoding(wrapped), img)


def test_numpy_to_base64_url_is_a_browser_data_url() -> None:
    url = numpy_to_base64_url(frame(), "jpg")
    prefix = "data:image/jpg;base64,"
    assert url.startswith(prefix)
    assert base64.b64decode(url[len(prefix):])[:2] == b"\xff\xd8"


def test_size_kb_measures_payload_bytes() -> None:
    assert size_kb(b"x" * 1500) == 1.5
    assert size_kb(np.zeros((10, 100), dtype=np.uint8)) == 1.0
    assert size_kb({"a": b"x" * 999}) == 1.0
