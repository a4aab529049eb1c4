"""FogVerse's ``ConsumerStart``: join a group with a partition waiting for you.

A Kafka group can use at most one consumer per partition, so a stage instance
that joins a group with as many members as partitions would sit idle. Under
the master's distributed lock (keyed by topic and group, so unrelated stages
never wait on each other), the starting consumer counts the group's members,
grows the topic to members + 1 partitions, subscribes, and keeps the lock until
the broker lists it as a member; the next instance then counts it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from confluent_kafka.admin import AdminClient

from fogverse.admin import KafkaAdmin
from fogverse.constants import DEFAULT_LOCK_PORT
from fogverse.lock import DistributedLock, LockLostError

__all__ = ["LOCK_KEY_PREFIX", "ConsumerStart", "SubscribingConsumer"]

LOCK_KEY_PREFIX = "fogverse-consumer-start/"
"""Lock keys are ``<prefix><topic>/<group id>``."""

_FIRST_CHECK_DELAY = 0.1


class SubscribingConsumer(Protocol):
    """What ``ConsumerStart`` needs of a consumer: a stage's ``self.consumer`` (either
    client backend) or a ``confluent_kafka.Consumer``."""

    @property
    def subscribe(self) -> Callable[..., None]: ...


class ConsumerStart:
    """Starts consumers so that each finds a partition of its own.

    ``kafka_admin`` is a ``KafkaAdmin`` or a confluent-kafka ``AdminClient``.
    ``sleep_time`` is the longest pause between checks while waiting for the
    consumer to show up in its group (checks start quicker than that).
    ``join_timeout`` bounds that wait; after it the lock is released anyway
    with a warning, so a slow broker can delay other consumers but never
    block them. ``lock_lease`` and ``lock_timeout`` go to the lock client.
    """

    def __init__(
        self,
        kafka_admin: KafkaAdmin | AdminClient,
        sleep_time: float = 3,
        master_host: str = "localhost",
        master_port: int = DEFAULT_LOCK_PORT,
        initial_total_partition: int = 1,
        *,
        join_timeout: float = 30.0,
        lock_lease: float = 10.0,
        lock_timeout: float | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if isinstance(kafka_admin, KafkaAdmin):
            self._admin = kafka_admin
        else:
            self._admin = KafkaAdmin.wrap(kafka_admin)
        self._sleep_time = max(sleep_time, _FIRST_CHECK_DELAY)
        self._initial_partitions = max(1, initial_total_partition)
        self._join_timeout = join_timeout
        self._lock = DistributedLock(master_host, master_port)
        self._lease = lock_lease
        self._lock_timeout = lock_timeout
        self._log = logger or logging.getLogger(__name__)

    async def start_with_distributed_lock(
        self,
        consumer: SubscribingConsumer,
        topic: str | Sequence[str],
        group_id: str,
        consumer_id: str,
        /,
        **subscribe_kwargs: Any,
    ) -> int:
        """Grow ``topic`` for one more member of ``group_id``, then subscribe ``consumer``.

        ``topic`` may be a list of topics (a stage's ``consumer_topic``); each
        grows, and the smallest count is returned. ``subscribe_kwargs``
        (a fogverse stage's ``subscribe_options()``, or confluent-kafka's
        ``on_assign`` / ``on_revoke`` / ``on_lost``) go to ``consumer.subscribe``. Returns the
        topic's partition count.
        """
        topics = [topic] if isinstance(topic, str) else list(topic)
        key = f"{LOCK_KEY_PREFIX}{','.join(topics)}/{group_id}"
        partitions = 0
        try:
            async with self._lock.hold(key, lease=self._lease, timeout=self._lock_timeout):
                # Nothing here needs the fencing token: growing to at least N
                # partitions is idempotent and never shrinks the topic, so a
                # holder whose lease ran out mid-way cannot undo a later
                # holder's work, and subscribing touches only this consumer.
                members, partitions = 0, 0
                for name in topics:
                    members, grown = await self._make_room(name, group_id, consumer_id)
                    partitions = grown if not partitions else min(partitions, grown)
                consumer.subscribe(topics, **subscribe_kwargs)
                is_member = _membership_check(consumer, members)
                await self._wait_until_member(is_member, group_id, consumer_id)
        except LockLostError as exc:
            # The consumer is subscribed; at worst a concurrent starter sized the
            # topic from a stale count and the master's scaler adds the partition.
            self._log.warning("%s: %s", consumer_id, exc)
        return partitions

    async def _make_room(self, topic: str, group_id: str, consumer_id: str) -> tuple[int, int]:
        """Grow the topic for one more member; return (members before, partitions)."""
        members = await self._admin.group_member_count(group_id)
        if members is None:
            self._log.warning("%s: member count of %r unknown; assuming 0", consumer_id, group_id)
            members = 0
        wanted = max(self._initial_partitions, members + 1)
        partitions = await self._admin.ensure_partitions(topic, wanted)
        self._log.info(
            "%s: %d member(s) in %r, %r has %d partition(s)",
            consumer_id, members, group_id, topic, partitions,
        )  # fmt: skip
        return members, partitions

    async def _wait_until_member(
        self, is_member: Callable[[list[str]], bool], group_id: str, consumer_id: str
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._join_timeout
        delay = _FIRST_CHECK_DELAY
        while not is_member(await self._admin.group_member_ids(group_id) or []):
            if loop.time() >= deadline:
                self._log.warning(
                    "%s: not listed in group %r after %.0fs; releasing the lock anyway",
                    consumer_id, group_id, self._join_timeout,
                )  # fmt: skip
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._sleep_time)


def _membership_check(
    consumer: SubscribingConsumer, members_before: int
) -> Callable[[list[str]], bool]:
    """How to tell from the group's member ids that ``consumer`` has joined."""
    member_id = getattr(consumer, "memberid", None)
    if callable(member_id):
        # The id exists only once the consumer has joined (classic protocol) or
        # is chosen by the client up front (KIP-848): ask each time.
        return lambda ids: bool(current := member_id()) and current in ids
    return lambda ids: len(ids) > members_before
