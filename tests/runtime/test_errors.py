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


class AsyncReciprocal(Consumer):
    """The same with an async process(): the policy must not depend on the kind."""

    async def process(self, data: int) -> float:
        await asyncio.sleep(0)
        return 1 / data


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Every error-policy test runs for a sync and an async stage."""
    return str(request.param)


@pytest.fixture
def reciprocal(kind: str) -> type[Consumer]:
    return Reciprocal if kind == "sync" else AsyncReciprocal


def _inputs_with_poison() -> tuple[list[bytes], list[list[tuple[str, bytes]]]]:
    values = [msgpack.packb(i) for i in range(1, 101)]
    headers = [MSGPACK] * 100
    values[30] = b"\xc1\xc1 not msgpack"  # decode fails
    values[60] = msgpack.packb(0)  # process fails
    return values, headers


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_stage_goes_on(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str],
    reciprocal: type[Consumer], client: str,
) -> None:
    src, dst = create_topic(admin, unique("dlq-in")), create_topic(admin, unique("dlq-out"))
    values, headers = _inputs_with_poison()
    produce(kafka_bootstrap, src, values, headers=headers)
    stage = reciprocal(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
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
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str],
    reciprocal: type[Consumer],
) -> None:
    src, dst = create_topic(admin, unique("skip-in")), create_topic(admin, unique("skip-out"))
    values, headers = _inputs_with_poison()
    produce(kafka_bootstrap, src, values, headers=headers)
    stage = reciprocal(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                       group_id=unique("skip"), max_messages=100, error_policy="skip",
                       heartbeat=False)
    await asyncio.wait_for(stage.run(), 60)
    assert len(read(kafka_bootstrap, dst, 98)) == 98
    assert (stage.stats.skipped, stage.stats.errors) == (2, 2)


async def test_stop_policy_stops_without_committing_the_bad_message(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str],
    reciprocal: type[Consumer], client: str,
) -> None:
    src, dst = create_topic(admin, unique("stop-in")), create_topic(admin, unique("stop-out"))
    values, headers = _inputs_with_poison()
    produce(kafka_bootstrap, src, values, headers=headers)
    group = unique("stop")
    settings = {"consumer_topic": src, "producer_topic": dst, "group_id": group,
                "consumer_servers": kafka_bootstrap, "error_policy": "stop", "heartbeat": False}
    with pytest.raises(StageError, match="Reciprocal stopped"):
        await asyncio.wait_for(reciprocal(**settings).run(), 60)

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
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], tmp_path: Path,
    reciprocal: type[Consumer],
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
    stage = reciprocal(consumer_topic=src, producer_topic=dst, consumer_servers=kafka_bootstrap,
                       group_id=unique("pkl"), max_messages=3, heartbeat=False)
    await asyncio.wait_for(stage.run(), 60)
    assert not marker.exists()
    assert len(read(kafka_bootstrap, f"fogverse-dlq-{src}", 3)) == 3


async def test_unreachable_broker_retries_then_says_so() -> None:
    stage = Reciprocal(consumer_topic="t", consumer_servers="127.0.0.1:1", connect_attempts=2,
                       connect_backoff=0.1, heartbeat=False)
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:1 after 2 attempts"):
        await asyncio.wait_for(stage.run(), 60)


async def test_an_input_too_large_to_forward_or_dead_letter_is_recorded_without_its_bytes(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], kind: str, client: str
) -> None:
    src, dst = create_topic(admin, unique("big-in")), create_topic(admin, unique("big-out"))
    big = msgpack.packb(b"x" * 6000)
    produce(kafka_bootstrap, src, [msgpack.packb(b"ok"), big, msgpack.packb(b"ok2")],
            headers=[MSGPACK] * 3)
    group = unique("big")

    class Echo(Consumer):
        pass

    class AsyncEcho(Consumer):
        async def process(self, data: Any) -> Any:
            return data

    echo = Echo if kind == "sync" else AsyncEcho

    settings: dict[str, Any] = {
        "consumer_topic": src, "producer_topic": dst, "consumer_servers": kafka_bootstrap,
        "group_id": group, "heartbeat": False,
        # The producer refuses anything over 5,000 bytes: output and dead letter alike.
        "producer_extra": {"message.max.bytes": 5000},
    }
    stage = echo(max_messages=3, **settings)
    await asyncio.wait_for(stage.run(), 60)

    # bytes pass through the default codec as themselves
    assert sorted(r.value or b"" for r in read(kafka_bootstrap, dst, 2)) == [b"ok", b"ok2"]
    [dead] = read(kafka_bootstrap, f"fogverse-dlq-{src}", 1)
    assert dead.value is None
    assert dead.header("fogverse-origin-offset") == b"1"
    assert b"MSG_SIZE_TOO_LARGE" in (dead.header("fogverse-error") or b"")

    again = echo(idle_timeout=3, **settings)
    await asyncio.wait_for(again.run(), 60)
    assert again.stats.consumed == 0, "the recorded input was not committed"


async def test_a_failing_source_receive_goes_through_the_error_policy(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], kind: str
) -> None:
    from fogverse import Producer

    dst = create_topic(admin, unique("src-out"))

    class Flaky(Producer):
        def __init__(self, **settings: Any) -> None:
            super().__init__(**settings)
            self.calls = 0

        def receive(self) -> int:
            self.calls += 1
            if self.calls % 3 == 0:
                raise OSError("camera hiccup")
            return self.calls

    class AsyncFlaky(Flaky):
        async def receive(self) -> int:  # type: ignore[override]
            await asyncio.sleep(0)
            return super().receive()

    flaky = Flaky if kind == "sync" else AsyncFlaky
    source = flaky(producer_topic=dst, consumer_servers=kafka_bootstrap, max_messages=10,
                   error_policy="skip", heartbeat=False)
    await asyncio.wait_for(source.run(), 60)
    got = sorted(msgpack.unpackb(r.value) for r in read(kafka_bootstrap, dst, 10))
    assert len(got) == 10 and all(n % 3 for n in got)
    assert source.stats.skipped >= 4


async def test_a_dead_letter_the_broker_rejects_is_sent_again_without_its_value(
    kafka_bootstrap: str, admin: Any, unique: Callable[[str], str], reciprocal: type[Consumer]
) -> None:
    src, dst = create_topic(admin, unique("rej-in")), create_topic(admin, unique("rej-out"))
    # The broker, not the producer, refuses anything over 2,000 bytes here.
    create_topic(admin, f"fogverse-dlq-{src}", config={"max.message.bytes": "2000"})
    poison = b"\xc1" * 6000  # not msgpack: decode fails, the input is dead-lettered
    produce(kafka_bootstrap, src, [msgpack.packb(1), poison, msgpack.packb(2)],
            headers=[MSGPACK] * 3)
    settings: dict[str, Any] = {"consumer_topic": src, "producer_topic": dst,
                                "consumer_servers": kafka_bootstrap, "group_id": unique("rej"),
                                "heartbeat": False}
    stage = reciprocal(max_messages=3, **settings)
    await asyncio.wait_for(stage.run(), 60)  # must not stop on the rejection

    assert sorted(r.data for r in read(kafka_bootstrap, dst, 2)) == [0.5, 1.0]  # type: ignore[type-var]
    [dead] = read(kafka_bootstrap, f"fogverse-dlq-{src}", 1)
    assert dead.value is None
    assert dead.header("fogverse-origin-offset") == b"1"
    assert dead.header("fogverse-error-type") == b"DecodeError"

    again = reciprocal(idle_timeout=3, **settings)
    await asyncio.wait_for(again.run(), 60)
    assert again.stats.consumed == 0, "the dead-lettered input was not committed"
