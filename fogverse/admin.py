"""An asyncio face for Kafka's admin API: topics, partitions, group lag and members.

confluent-kafka's ``AdminClient`` returns ``concurrent.futures`` resolved by
librdkafka's own thread; they are awaited through ``asyncio.wrap_future``, so no
call here ever blocks the event loop (or ties up a worker thread while waiting).
Errors the broker marks retriable (a coordinator still loading, a leader moving)
are retried with backoff before they reach the caller.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)

# The documented import path; the package's stubs forget to re-export these names.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

from fogverse.errors import FogVerseError

__all__ = ["AdminError", "KafkaAdmin"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_NO_OFFSET = -1001
"""librdkafka's OFFSET_INVALID: the group has committed nothing for the partition."""

_ALSO_RETRIABLE = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
    }
)
"""Transient on a broker that has just started, even where librdkafka does not say so."""


class AdminError(FogVerseError):
    """A Kafka admin request failed; ``code`` is Kafka's error name when there is one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def _kafka_error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def _error_code(exc: BaseException) -> int | None:
    error = _kafka_error(exc)
    return None if error is None else int(error.code())


def _retriable(exc: BaseException) -> bool:
    error = _kafka_error(exc)
    if error is None:
        return isinstance(exc, TimeoutError)
    return bool(error.retriable()) or error.code() in _ALSO_RETRIABLE


MAX_INTERNAL_REPLICAS = 3
"""Copies of a replicated internal topic on a cluster of three or more brokers."""
_REPLICAS = "replication.factor"


class KafkaAdmin:
    """Topic and group administration for the master and ``ConsumerStart``.

    ``extra`` passes librdkafka settings through unchanged. ``request_timeout``
    bounds each broker round trip; ``attempts`` is how often a retriable error
    is tried before it is raised.
    """

    def __init__(
        self,
        bootstrap: str,
        extra: Mapping[str, Any] | None = None,
        *,
        request_timeout: float = 15.0,
        attempts: int = 6,
    ) -> None:
        client = AdminClient({"bootstrap.servers": bootstrap, **(extra or {})})
        self._setup(client, request_timeout, attempts)

    @classmethod
    def wrap(
        cls, client: AdminClient, *, request_timeout: float = 15.0, attempts: int = 6
    ) -> KafkaAdmin:
        """Use an ``AdminClient`` the caller already built (FogVerse code passes one)."""
        admin = cls.__new__(cls)
        admin._setup(client, request_timeout, attempts)
        return admin

    def _setup(self, client: AdminClient, request_timeout: float, attempts: int) -> None:
        self._client: AdminClient | None = client
        self._timeout = request_timeout
        self._attempts = max(1, attempts)

    def close(self) -> None:
        """Drop the client; librdkafka shuts it down once nothing refers to it."""
        self._client = None

    # -- topics ----------------------------------------------------------------

    async def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has; ``None`` if it does not exist."""
        return await self._retry(f"describe topic {topic!r}", lambda: self._partitions(topic))

    async def ensure_topic(
        self,
        topic: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        replicated: bool = False,
    ) -> None:
        """Create ``topic`` unless it exists (an existing one is left as it is).

        ``replicated`` asks for as many copies as the cluster allows, up to three,
        with all but one of them in sync (``min.insync.replicas``); otherwise the
        broker's default replication applies.
        """
        if replicated:
            config = {**(await self._replication(config)), **(config or {})}
        await self._retry(
            f"create topic {topic!r}", lambda: self._create_topic(topic, partitions, config)
        )
        # A topic is usable once its metadata says so; callers describe it next.
        await self._until(f"topic {topic!r} to appear", lambda: self._partitions(topic))

    async def ensure_partitions(self, topic: str, count: int) -> int:
        """Grow ``topic`` to at least ``count`` partitions and return how many it has.

        Never shrinks; safe when several callers race (whoever grows it first
        wins, the others see enough partitions). A missing topic is created with
        ``count`` partitions.
        """
        if count < 1:
            raise ValueError(f"a topic needs at least one partition, not {count}")
        current = await self.partition_count(topic)
        if current is None:
            await self.ensure_topic(topic, count)
            current = await self.partition_count(topic) or 0
        if current < count:
            await self._retry(
                f"grow {topic!r} to {count} partitions", lambda: self._grow(topic, count)
            )
            current = await self._until(
                f"{topic!r} to show {count} partitions",
                lambda: self._at_least(topic, count),
            )
        return current

    # -- consumer groups -------------------------------------------------------

    async def group_member_ids(self, group_id: str) -> list[str] | None:
        """Member ids of ``group_id`` (empty for an unknown group); ``None`` on failure."""
        try:
            return await self._retry(
                f"describe group {group_id!r}", lambda: self._members(group_id)
            )
        except AdminError as exc:
            _log.warning("%s", exc)
            return None

    async def group_member_count(self, group_id: str) -> int | None:
        """How many consumers are in ``group_id`` now; ``None`` if that cannot be told."""
        members = await self.group_member_ids(group_id)
        return None if members is None else len(members)

    async def group_lag(self, group_id: str, topic: str) -> int | None:
        """Messages of ``topic`` that ``group_id`` has not committed yet, over all partitions.

        A partition without a commit counts from its low watermark (new groups
        read from the earliest offset). ``None`` if the topic does not exist or
        the broker could not answer.
        """
        try:
            return await self._retry(
                f"lag of {group_id!r} on {topic!r}", lambda: self._lag(group_id, topic)
            )
        except AdminError as exc:
            _log.warning("%s", exc)
            return None

    # -- one round trip each ---------------------------------------------------

    async def _partitions(self, topic: str) -> int | None:
        future = self._admin().describe_topics(
            TopicCollection([topic]), request_timeout=self._timeout
        )[topic]
        try:
            description = await self._wait(future)
        except KafkaException as exc:
            if _error_code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            raise
        return len(description.partitions)

    async def _at_least(self, topic: str, count: int) -> int | None:
        current = await self._partitions(topic)
        return current if current is not None and current >= count else None

    async def _replication(self, config: Mapping[str, str] | None) -> dict[str, str]:
        """Replication settings for an internal topic on this cluster (as config entries)."""
        metadata = await self._retry(
            "count brokers",
            lambda: asyncio.to_thread(self._admin().list_topics, timeout=self._timeout),
        )
        replicas = min(MAX_INTERNAL_REPLICAS, max(1, len(metadata.brokers)))
        return {_REPLICAS: str(replicas), "min.insync.replicas": str(max(1, replicas - 1))}

    async def _create_topic(
        self, topic: str, partitions: int, config: Mapping[str, str] | None
    ) -> None:
        settings = dict(config or {})
        # Not a topic config: NewTopic takes it as an argument of its own.
        replicas = int(settings.pop(_REPLICAS, -1))
        spec = NewTopic(
            topic, num_partitions=partitions, replication_factor=replicas, config=settings
        )
        future = self._admin().create_topics(
            [spec], operation_timeout=self._timeout, request_timeout=self._timeout
        )[topic]
        try:
            await self._wait(future)
        except KafkaException as exc:
            if _error_code(exc) != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    async def _grow(self, topic: str, count: int) -> None:
        future = self._admin().create_partitions(
            [NewPartitions(topic, count)],
            operation_timeout=self._timeout,
            request_timeout=self._timeout,
        )[topic]
        try:
            await self._wait(future)
        except KafkaException as exc:
            # Someone else grew it first (or to more): fine if it now has enough.
            if _error_code(exc) != KafkaError.INVALID_PARTITIONS:
                raise
            current = await self._partitions(topic)
            if current is None or current < count:
                raise

    async def _members(self, group_id: str) -> list[str]:
        future = self._admin().describe_consumer_groups([group_id], request_timeout=self._timeout)[
            group_id
        ]
        try:
            description = await self._wait(future)
        except KafkaException as exc:
            if _error_code(exc) == KafkaError.GROUP_ID_NOT_FOUND:
                return []
            raise
        return [member.member_id for member in description.members]

    async def _lag(self, group_id: str, topic: str) -> int | None:
        count = await self._partitions(topic)
        if count is None:
            return None
        partitions = [TopicPartition(topic, p) for p in range(count)]
        committed = await self._committed(group_id, partitions)
        low = await self._offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        high = await self._offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        lag = 0
        for p in range(count):
            # No commit, or one older than retention kept: the group starts at the low mark.
            start = max(committed.get(p, _NO_OFFSET), low[p])
            lag += max(0, high[p] - start)
        return lag

    async def _committed(self, group_id: str, partitions: list[TopicPartition]) -> dict[int, int]:
        request = ConsumerGroupTopicPartitions(group_id, partitions)
        future = self._admin().list_consumer_group_offsets(
            [request], request_timeout=self._timeout
        )[group_id]
        result = await self._wait(future)
        return {tp.partition: tp.offset for tp in result.topic_partitions if tp.error is None}

    async def _offsets(self, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[int, int]:
        futures = self._admin().list_offsets(
            {tp: spec for tp in partitions}, request_timeout=self._timeout
        )
        return {tp.partition: (await self._wait(f)).offset for tp, f in futures.items()}

    # -- plumbing --------------------------------------------------------------

    def _admin(self) -> AdminClient:
        if self._client is None:
            raise AdminError("KafkaAdmin is closed")
        return self._client

    async def _wait(self, future: concurrent.futures.Future[Any]) -> Any:
        # librdkafka enforces request_timeout itself; this guard only catches a lost callback.
        return await asyncio.wait_for(asyncio.wrap_future(future), self._timeout + 5)

    async def _retry(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        delay = 0.1
        for attempt in range(1, self._attempts + 1):
            try:
                return await call()
            except (KafkaException, TimeoutError) as exc:
                if attempt == self._attempts or not _retriable(exc):
                    error = _kafka_error(exc)
                    code = error.name() if error is not None else None
                    raise AdminError(f"{what} failed: {exc}", code) from exc
                _log.debug("%s: retrying after %s", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _until(self, what: str, probe: Callable[[], Awaitable[_T | None]]) -> _T:
        """Poll ``probe`` until it returns a value; metadata lags behind admin writes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            value = await self._retry(what, probe)
            if value is not None:
                return value
            if loop.time() > deadline:
                raise AdminError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)
