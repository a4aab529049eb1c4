"""Stored plans: a round trip, and garbage that is refused."""

from __future__ import annotations

import msgpack
import pytest

from master.plans import StagePlan
from master.state import decode_plan, encode_plan


def test_plan_round_trip() -> None:
    plan = StagePlan(("a", None), "svc", "REC", 0, 5, "g", {"zone": "a"})
    assert decode_plan(encode_plan(plan)) == plan


@pytest.mark.parametrize("raw", [b"", b"\xc1", msgpack.packb([1]), msgpack.packb({"v": 1})])
def test_garbage_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a stored plan"):
        decode_plan(raw)
