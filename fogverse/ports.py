"""Checks on TCP ports a user names, so a taken one is reported before any work starts."""

from __future__ import annotations

import errno
import socket

from fogverse.errors import PortInUseError

__all__ = ["check_port_free"]


def check_port_free(setting: str, port: int, host: str = "127.0.0.1") -> None:
    """Raise PortInUseError naming ``setting`` when something listens on ``host:port``.

    Binds and lets go at once; another program may still take the port in between,
    which the real bind then reports.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: a port left in TIME_WAIT by a closed one is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(setting, port, host) from None
            raise
