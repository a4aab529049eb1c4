"""Frames survive any split of the byte stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fogverse.parallel.wire import FrameBuffer, Kind, encode_frame

frames = st.lists(
    st.tuples(st.sampled_from(list(Kind)), st.integers(0, 2**64 - 1), st.text(max_size=20),
              st.binary(max_size=300), st.floats(allow_nan=False)),
    max_size=10,
)


@given(specs=frames, cuts=st.lists(st.integers(0, 4000), max_size=8))
def test_frames_come_out_whole_and_in_order_however_the_bytes_are_split(
    specs: list[tuple[Kind, int, str, bytes, float]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(k, j, m, d, s) for k, j, m, d, s in specs)
    buffer = FrameBuffer()
    got = []
    start = 0
    for cut in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
        buffer.feed(stream[start:cut])
        got.extend(buffer.frames())
        start = cut
    assert [(f.kind, f.job, f.meta, f.data, f.seconds) for f in got] == specs
    assert len(buffer) == 0
