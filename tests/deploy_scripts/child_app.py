"""A stand-in stage for the LOCAL provider tests.

It writes a JSON report (its pid and the environment it was given) to
``$FV_REPORT_DIR/<instance id>.json`` and then waits to be stopped. Options let a
test make it ignore SIGTERM or leave a grandchild behind.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

_REPORTED_ENV = ("FOGVERSE_INSTANCE_ID", "FOGVERSE_SERVICE_NAME", "FV_BASE", "FV_SPEC", "FV_EXTRA")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--grandchild", action="store_true")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = None
    if args.grandchild:
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"]).pid
    report = {
        "pid": os.getpid(),
        "grandchild": grandchild,
        "args": args.rest,
        "env": {name: os.environ.get(name) for name in _REPORTED_ENV},
        "env_names": sorted(os.environ),
    }
    target = Path(os.environ["FV_REPORT_DIR"]) / f"{os.environ['FOGVERSE_INSTANCE_ID']}.json"
    # Write then rename, so a reader never sees half a report.
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(report))
    partial.replace(target)
    print("child ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
