"""Errors every backend raises alike."""

from __future__ import annotations

from fogverse.errors import BrokerUnavailableError

__all__ = ["unreachable"]


def unreachable(servers: str, attempts: int) -> BrokerUnavailableError:
    """No broker answered: say which setting to check."""
    return BrokerUnavailableError(
        f"no Kafka broker answered at {servers} after {attempts} attempts",
        hint="check the bootstrap servers (--bootstrap, the consumer_servers / producer_servers "
        "settings, $CONSUMER_SERVERS, $FOGVERSE_BOOTSTRAP) or start a broker with "
        "`fogverse broker`",
    )
