"""The small interface every Kafka client backend offers the rest of fogverse.

The runtime, the Observer and the node agent speak to Kafka only through
these shapes, so a device without librdkafka can run the same stage on
aiokafka. They follow confluent-kafka's calling conventions where the hot
path uses them (``produce`` is a plain call that queues and returns; delivery
reports are ``(error, message)`` callbacks), so the default backend hands its
own bound methods through and pays nothing for the indirection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fogverse.config import StageConfig
from fogverse.context import Headers, MessageContext
from fogverse.offsets import CommitTracker, TopicPartitionKey

__all__ = [
    "Backend",
    "BrokerAdmin",
    "ClientError",
    "ConsumerClient",
    "DeliveredMessage",
    "DeliveryReport",
    "Fetched",
    "ProducerClient",
    "Rebalance",
    "SyncProducer",
    "TailReader",
]


class ClientError(Protocol):
    """A client's error as delivery reports and fetches hand it over."""

    def fatal(self) -> bool:
        """The client instance cannot go on (confluent's meaning)."""
        ...

    def __str__(self) -> str: ...


class DeliveredMessage(Protocol):
    """What a delivery report says about the message it reports on."""

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...


DeliveryReport = Callable[[Any, Any], None]
"""``report(error_or_None, message)``: called once per produced message.

Typed loosely because each backend passes its own error and message types,
both shaped like :class:`ClientError` and :class:`DeliveredMessage`.
"""

Fetched = tuple[list[MessageContext], int]
"""A batch of inputs and the commit tracker's revocation count it was read under."""


class Rebalance(Protocol):
    """The stage's side of a group rebalance."""

    def assigned(self, partitions: list[TopicPartitionKey]) -> None: ...

    def revoked(self, partitions: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Forget the partitions; return positions to commit before letting them go."""
        ...

    def lost(self, partitions: list[TopicPartitionKey]) -> None: ...


class ConsumerClient(Protocol):
    """A group member reading a stage's input topics."""

    native: Any
    """The backend's own consumer object, for code that needs more than this."""

    async def start(self) -> None:
        """Connect (where the backend needs it) before :meth:`subscribe`."""
        ...

    def subscribe(self, topics: list[str], *, listener: Rebalance,
                  read_latest: bool = False) -> None: ...

    async def fetch(self) -> Fetched:
        """The next batch, empty if nothing came within the stage's fetch timeout."""
        ...

    def commit_soon(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        """Start committing next-offset ``positions`` without waiting for the broker.

        False (and a warning logged) if the commit could not even be started.
        """
        ...

    async def commit(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        """Commit next-offset ``positions`` and wait; False (warning logged) if it failed."""
        ...

    def assignment(self) -> list[TopicPartitionKey]: ...

    async def lag(self) -> int | None:
        """Unread messages in the assigned partitions, from what the client already
        knows (its positions and the high watermarks of its last fetches); None while
        no assigned partition has both."""
        ...

    async def close(self) -> None:
        """Leave the group (what is not committed is read again by the next owner)."""
        ...


class ProducerClient(Protocol):
    """A stage's producer, used on the stage's event loop."""

    native: Any

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                headers: Headers | None = None,
                on_delivery: DeliveryReport | None = None) -> None:
        """Queue one message; raises BufferError while the local queue is full."""
        ...

    def poll(self, timeout: float = 0) -> int:
        """Serve delivery reports that are due (blocking up to ``timeout``)."""
        ...

    async def room(self) -> None:
        """Wait until the producer takes more without growing its queue without bound."""
        ...

    async def flush(self, timeout: float) -> int:
        """Deliver everything queued; return how many are still undelivered."""
        ...

    async def close(self) -> None:
        """Let the connections go (after :meth:`flush`)."""
        ...


class SyncProducer(Protocol):
    """A producer usable from any thread (heartbeats, the agent's reports).

    A ``confluent_kafka.Producer`` is one as it is.
    """

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                *args: Any, **kwargs: Any) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...


class TailReader(Protocol):
    """Reads one topic from the end it had when opened, outside any group.

    What a node agent reads its orders with: it must never replay old ones.
    """

    async def read(self) -> list[bytes | None]:
        """The values that came since the last call; empty after a short wait."""
        ...

    async def close(self) -> None: ...


class BrokerAdmin(Protocol):
    """What a stage needs of the cluster before it starts: topics of its own."""

    async def ensure_topics(self, topics: list[str]) -> None:
        """Create the missing ones with one partition (the master adds more)."""
        ...

    async def close(self) -> None: ...


class Backend(Protocol):
    """A Kafka client library behind the interface."""

    name: str

    async def connect(self, servers: str, extra: Mapping[str, Any], attempts: int,
                      backoff: float) -> BrokerAdmin:
        """An admin once the cluster answers; BrokerUnavailableError after ``attempts``."""
        ...

    def consumer(self, config: StageConfig, group_id: str, client_id: str,
                 tracker: CommitTracker, size: Callable[[], int],
                 on_error: Callable[[ClientError], None], name: str) -> ConsumerClient:
        """The stage's consumer; ``size()`` caps each fetch, read when it starts."""
        ...

    async def producer(self, config: StageConfig, client_id: str) -> ProducerClient: ...

    def sync_producer(self, servers: str, extra: Mapping[str, Any],
                      options: Mapping[str, Any]) -> SyncProducer:
        """A thread-safe producer; ``options`` in librdkafka's names (the backend maps them)."""
        ...

    async def tail_reader(self, servers: str, extra: Mapping[str, Any],
                          topic: str) -> TailReader:
        """A reader of ``topic`` from its current end, on every partition it has."""
        ...
