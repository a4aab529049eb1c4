"""A throwaway parent: starts one child through ``fogverse.processes.spawn`` from a
short-lived thread, prints the child's pid once that thread has exited, then waits
to be killed.

Usage: python parent_app.py die|live
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from fogverse import processes

__all__ = ["main"]


def main() -> None:
    die = sys.argv[1] == "die"
    started: list[int] = []

    def start() -> None:
        child = processes.spawn(
            [sys.executable, "-c", "import time; time.sleep(3600)"],
            output=sys.stderr.buffer,
            die_with_parent=signal.SIGKILL if die else None,
        )
        started.append(child.pid)

    # A death signal tied to this thread, not to the process, would fire on its exit.
    starter = threading.Thread(target=start)
    starter.start()
    starter.join()
    print(started[0], flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
