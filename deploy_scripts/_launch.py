"""Exec a command that dies with the process that launched it (Linux only).

Run by file path, not as a module, so it works whatever ``sys.path`` the child
has. ``subprocess``'s ``preexec_fn`` could do the same but is unsafe in a
threaded parent (the master runs librdkafka threads), so the prctl happens here,
in a fresh single-threaded interpreter, just before the exec.

Usage: python _launch.py <parent pid> <signal number> -- <argv...>
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: _launch.py <parent pid> <signal> -- <argv...>", file=sys.stderr)
        return 2
    parent, sig, command = int(argv[1]), int(argv[2]), argv[4:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    # The parent may have died before prctl ran; then no signal would ever come.
    if os.getppid() != parent:
        return 1
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    return 0  # unreachable: execvp replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv))
