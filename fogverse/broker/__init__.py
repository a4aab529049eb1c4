"""A real Apache Kafka for the demo and the tests, started from Python.

``kafka_bootstrap()`` is what most callers want: it yields ``$FOGVERSE_BOOTSTRAP``
when an external cluster is configured, else starts an :class:`EmbeddedBroker` for
the duration of the ``with`` block.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fogverse.broker.embedded import EmbeddedBroker
from fogverse.broker.jars import DEFAULT_KAFKA_VERSION, ensure_kafka_jars
from fogverse.broker.kafka_node import new_cluster_id
from fogverse.constants import ENV_BOOTSTRAP

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "EmbeddedBroker",
    "ensure_kafka_jars",
    "kafka_bootstrap",
    "new_cluster_id",
]


@contextmanager
def kafka_bootstrap(**broker_options: Any) -> Iterator[str]:
    """Yield a bootstrap address: $FOGVERSE_BOOTSTRAP if set, else a fresh embedded broker's.

    ``broker_options`` go to :class:`EmbeddedBroker` and are ignored for an external
    cluster. Raises BrokerUnavailableError when no broker can be started.
    """
    external = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if external:
        yield external
        return
    with EmbeddedBroker(**broker_options) as broker:
        yield broker.bootstrap
