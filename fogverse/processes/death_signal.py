"""Ask the kernel to signal this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

A Python child calls :func:`set_death_signal` itself, first thing. Any other
program (the Kafka JVM) is started through this file run as a script, which
sets the signal in its own fresh, single-threaded interpreter and then execs the
real command; the signal survives the exec. That is why this file imports only
the standard library and never the package: it runs by path under ``python -S
-E -P``, with no site-packages and nothing of the child's ``PYTHONPATH`` or
working directory on ``sys.path``.

Script usage: ``python death_signal.py <parent pid> <signal number> -- <argv...>``
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Final

__all__ = ["SUPPORTED", "set_death_signal"]

SUPPORTED: Final = sys.platform.startswith("linux")
"""Whether this platform has a parent-death signal at all."""

_PR_SET_PDEATHSIG: Final = 1


def _load_prctl() -> Callable[..., int] | None:
    if not SUPPORTED:
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def set_death_signal(sig: int) -> bool:
    """Have ``sig`` sent to this process when the thread that forked it exits.

    False where the platform cannot. The parent may already have died before
    this call; then no signal will ever come, so a caller that knows its
    parent's pid checks ``os.getppid()`` afterwards (the script below does).
    """
    prctl = _load_prctl()
    return prctl is not None and prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: death_signal.py <parent pid> <signal> -- <argv...>", file=sys.stderr)
        return 2
    parent, sig, command = int(argv[1]), int(argv[2]), argv[4:]
    set_death_signal(sig)
    if os.getppid() != parent:
        return 1  # the parent died before the signal was armed
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    return 0  # unreachable: execvp replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv))
