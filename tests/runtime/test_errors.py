"""Bad input never stops a stage or loses good input; policies do what they say."""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from fogverse import BrokerUnavailableError, Consumer, StageError
from tests.conftest import create_topic
from tests.kafka_io import MSGPACK, produce, read

pytestmark = pytest.mark.kafka


class Reciprocal(Consumer):
    """Fails on zero, like a real stage failing on one bad frame."""

    def process(self, data: int) -> float:
        return 1 / data


def _inputs_with_poison() -> tuple[list[bytes], list[list[tuple[str, bytes]]]]:
    values = [msgpack.packb(i) for i in range(1, 101)]
    headers = [MSGPACK] * 100
    values[30] = b"\xc1\xc1 not msgpack"  # decode fails
    values[60] = msgpack.packb(0)  # process fails
    return values, headers


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_stage_goes_on(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("dlq-in")), create_topic(admin, unique("dlq-out"))
    values, headers = _inputs_with_poison()
    produce(kafka_bootstrap, src, values, headers=headers)
    stage = Reciprocal(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                       group_id=unique("dlq"), max_messages=100, heartbeat=False)
    await asyncio.wait_for(stage.run(), 60)

    assert len(read(kafka_bootstrap, dst, 98)) == 98
    dead = read(kafka_bootstrap, f"fogverse-dlq-{src}", 2)
    assert sorted(r.offset for r in dead) == [0, 1]
    by_origin = {int(r.header("fogverse-origin-offset") or b"-1"): r for r in dead}
    assert set(by_origin) == {30, 60}
    assert by_origin[30].value == values[30], "dead letter must carry the original bytes"
    assert by_origin[30].header("fogverse-error-type") == b"DecodeError"
    assert b"decode" in (by_origin[30].header("fogverse-error") or b"")
    assert by_origin[60].header("fogverse-error-type") == b"ZeroDivisionError"
    assert by_origin[60].header("fogverse-origin-topic") == src.encode()
    assert stage.stats.dead_lettered == 2


async def test_skip_policy_counts_and_drops(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("skip-in")), create_topic(admin, unique("skip-out"))
    values, headers = _inputs_with_poison()
    produce(kafka_bootstrap, src, values, headers=headers)
    stage = Reciprocal(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                       group_id=unique("skip"), max_messages=100, error_policy="skip",
                       heartbeat=False)
    await asyncio.wait_for(stage.run(), 60)
    assert len(read(kafka_bootstrap, dst, 98)) == 98
    assert (stage.stats.skipped, stage.stats.errors) == (2, 2)


async def test_stop_policy_stops_without_committing_the_bad_message(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str]
) -> None:
    src, dst = create_topic(admin, unique("stop-in")), create_topic(admin, unique("stop-out"))
    values, headers = _inputs_with_poison()
    produce(kafka_bootstrap, src, values, headers=headers)
    group = unique("stop")
    settings = {"consumer_topic": src, "producer_topic": dst, "group_id": group,
                "consumer_servers": kafka_bootstrap, "error_policy": "stop", "heartbeat": False}
    with pytest.raises(StageError, match="Reciprocal stopped"):
        await asyncio.wait_for(Reciprocal(**settings).run(), 60)

    seen: list[bytes] = []

    class Peek(Consumer):
        def decode(self, data: bytes) -> bytes:
            seen.append(data)
            return data

        def process(self, data: bytes) -> None:
            return None

    await asyncio.wait_for(Peek(**{**settings, "producer_topic": None},
                                max_messages=1).run(), 60)
    assert seen[0] in values[:31], "the stage committed past the message it stopped on"


async def test_a_pickle_payload_is_never_unpickled(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    evil = pickle.dumps(Exploit())
    src, dst = create_topic(admin, unique("pkl-in")), create_topic(admin, unique("pkl-out"))
    produce(kafka_bootstrap, src, [evil, evil, evil], headers=[
        [("content-type", b"application/python-pickle")],
        MSGPACK,
        [("content-type", b"application/x-npy")],
    ])
    stage = Reciprocal(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                       group_id=unique("pkl"), max_messages=3, heartbeat=False)
    await asyncio.wait_for(stage.run(), 60)
    assert not marker.exists()
    assert len(read(kafka_bootstrap, f"fogverse-dlq-{src}", 3)) == 3


async def test_unreachable_broker_retries_then_says_so() -> None:
    stage = Reciprocal(consumer_topic="t", consumer_servers="127.0.0.1:1", connect_attempts=2,
                       connect_backoff=0.1, heartbeat=False)
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:1 after 2 attempts"):
        await asyncio.wait_for(stage.run(), 60)
