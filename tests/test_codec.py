"""The codec: msgpack by default, NumPy without pickle, bytes and str as they are."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fogverse import DecodeError, DefaultCodec, EncodeError, MsgpackCodec, RawCodec

codec = DefaultCodec()

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(plain)
def test_plain_data_round_trips(value: Any) -> None:
    payload, content_type = codec.encode(value)
    assert codec.decode(payload, content_type) == value


@given(hnp.arrays(
    dtype=st.sampled_from(["uint8", "int16", "float32", "float64", ">i4", "complex64", "bool"]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=6),
))
def test_numpy_arrays_round_trip_with_dtype_and_shape(arr: np.ndarray) -> None:
    payload, content_type = codec.encode({"frame": arr, "n": 1})
    back = codec.decode(payload, content_type)["frame"]
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_non_contiguous_arrays_are_sent_as_their_values() -> None:
    arr = np.arange(24, dtype=np.int32).reshape(4, 6)[:, ::2]
    payload, ct = codec.encode(arr)
    np.testing.assert_array_equal(codec.decode(payload, ct), arr)


def test_object_arrays_are_refused_because_they_would_need_pickle() -> None:
    with pytest.raises(EncodeError, match="pickle"):
        codec.encode(np.array([object()], dtype=object))


def test_a_forged_object_array_is_refused_on_decode() -> None:
    body = msgpack.packb(["|O", [1], b"\x00" * 8], use_bin_type=True)
    forged = msgpack.packb(msgpack.ExtType(42, body))
    with pytest.raises(DecodeError):
        codec.decode(forged, "application/msgpack")


def test_bytes_and_str_pass_through_with_their_content_types() -> None:
    assert codec.encode(b"\x00jpeg") == (b"\x00jpeg", "application/octet-stream")
    assert codec.encode("hello") == (b"hello", "text/plain; charset=utf-8")
    assert codec.decode(b"hello", "text/plain; charset=utf-8") == "hello"
    assert codec.decode(b"\x00raw", None) == b"\x00raw"


def test_unknown_content_type_is_a_decode_error_naming_it() -> None:
    with pytest.raises(DecodeError, match="application/python-pickle"):
        codec.decode(b"\x80\x04.", "application/python-pickle")


def test_garbage_msgpack_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="msgpack"):
        MsgpackCodec().decode(b"\xc1", "application/msgpack")


def test_raw_codec_sends_bytes_only() -> None:
    assert RawCodec().encode(b"x") == (b"x", "application/octet-stream")
    with pytest.raises(EncodeError, match="bytes only"):
        RawCodec().encode({"a": 1})
