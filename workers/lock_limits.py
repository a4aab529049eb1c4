"""What one client of the lock service may take: leases, connections, keys, silence.

Set from Python (``DistributedLockWorker(max_connections=...)``) or from the
Master's config file (``distributed_worker_config``); either way a bad value is
refused naming the setting.
"""

from __future__ import annotations

import ipaddress
import resource
import socket
from dataclasses import dataclass

from fogverse.errors import ConfigError

__all__ = ["FD_SHARE", "LockLimits", "connection_budget", "is_loopback"]

FD_SHARE = 4
"""The service keeps at most 1/FD_SHARE of the process's descriptor limit in connections."""


@dataclass(frozen=True)
class LockLimits:
    """The lock service's caps; each is checked when built."""

    default_lease: float = 10.0
    """Seconds a lock is held when the client does not say."""
    max_lease: float = 600.0
    """The longest lease a client may ask for, so a typo cannot hold a key for a day."""
    max_connections: int = 256
    """Connections served at once (further capped by the descriptor limit)."""
    max_keys_per_client: int = 64
    """Keys one connection may hold or await."""
    idle_timeout: float = 60.0
    """Seconds of silence before a connection that awaits nothing is closed."""

    def __post_init__(self) -> None:
        for name in ("default_lease", "max_lease", "idle_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(name, value, "expected a positive number of seconds")
        for name in ("max_connections", "max_keys_per_client"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "expected a positive integer")
        if self.default_lease > self.max_lease:
            raise ConfigError("default_lease", self.default_lease,
                              f"must be at most max_lease ({self.max_lease})")


def connection_budget(requested: int) -> int:
    """``requested``, lowered to a quarter of the descriptor limit if that is smaller."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft // FD_SHARE))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine's loopback interface."""
    if not host:
        return False  # the empty host binds every interface
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
