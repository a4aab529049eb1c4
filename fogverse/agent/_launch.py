"""Exec a command that dies with the agent that launched it (Linux; elsewhere just exec).

Run by file path in a fresh interpreter: ``preexec_fn`` would do the prctl in the
forked agent, which is unsafe while librdkafka's threads run.

Usage: python -S _launch.py <parent pid> <signal number> -- <argv...>
"""

from __future__ import annotations

import ctypes
import os
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: _launch.py <parent pid> <signal> -- <argv...>", file=sys.stderr)
        return 2
    parent, sig, command = int(argv[1]), int(argv[2]), argv[4:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the agent died before the prctl: no signal would come
            return 1
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    return 0  # unreachable: execvp replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv))
