"""Cluster ids are what Kafka's StorageTool accepts: 22 chars of base64url, no leading '-'."""

from __future__ import annotations

import base64
import string
import uuid

from hypothesis import given
from hypothesis import strategies as st

from fogverse.broker.kafka_node import cluster_id_from_uuid, new_cluster_id

BASE64URL = set(string.ascii_letters + string.digits + "-_")
SAFE = uuid.UUID(int=1 << 120)  # encodes to a leading 'A'


@given(st.uuids())
def test_cluster_id_is_22_base64url_chars_that_decode_back(value: uuid.UUID) -> None:
    cid = cluster_id_from_uuid(value)
    assert len(cid) == 22
    assert set(cid) <= BASE64URL
    assert base64.urlsafe_b64decode(cid + "==") == value.bytes


@given(st.lists(st.uuids(), max_size=20))
def test_new_cluster_id_skips_ids_a_tool_would_read_as_a_flag(values: list[uuid.UUID]) -> None:
    candidates = [cluster_id_from_uuid(v) for v in [*values, SAFE]]
    expected = next(c for c in candidates if not c.startswith("-"))
    source = iter([*values, SAFE])
    cid = new_cluster_id(lambda: next(source))
    assert cid == expected
    assert not cid.startswith("-")


def test_leading_dash_ids_exist_so_the_skip_matters() -> None:
    # 0xF8.. encodes to '-' as the first base64url character.
    assert cluster_id_from_uuid(uuid.UUID(int=0xF8 << 120)).startswith("-")


def test_default_source_gives_fresh_ids() -> None:
    assert len({new_cluster_id() for _ in range(50)}) == 50
