"""``python -m examples.demo`` (what ``scripts/demo.sh`` runs): watch a pipeline scale itself.

Starts a Kafka broker (or uses ``FOGVERSE_BOOTSTRAP``), a Master, three node
agents playing a desktop, a charging phone and a phone on low battery, and a
camera -> slow analysis -> sink pipeline. The camera's rate steps up; the
master scales the analysis stage out onto the nodes its scheduler picks, and
back in when the load drops. It ends by itself with a summary whose last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from examples.demo.display import make_display, render_table
from examples.demo.run import DemoFailedError, run_demo
from examples.demo.settings import FULL, SHORT
from fogverse.broker import kafka_bootstrap
from fogverse.errors import BrokerUnavailableError

ENV_SHORT = "FOGVERSE_DEMO_SHORT"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/demo.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true",
                        default=os.environ.get(ENV_SHORT, "") not in ("", "0", "false"),
                        help=f"a quick run for CI (also ${ENV_SHORT}=1)")
    parser.add_argument("--forever", action="store_true",
                        help="repeat the load step and the calm until Ctrl-C")
    parser.add_argument("--plain", action="store_true",
                        help="plain progress lines even on a terminal")
    parser.add_argument("--port", type=int, default=4280,
                        help="the master's HTTP port (default 4280; any free one if taken)")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where the master, agents and instances log (default: a new "
                        "temporary directory)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="fogverse-demo-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    # The screen is the display's: everything that logs goes to a file.
    logging.basicConfig(level=logging.INFO, filename=log_dir / "master.log",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print("starting Kafka (or using FOGVERSE_BOOTSTRAP)...", flush=True)
    try:
        with kafka_bootstrap() as servers:
            print(f"broker at {servers}", flush=True)
            display = make_display(args.plain)
            try:
                summary = asyncio.run(run_demo(servers, SHORT if args.short else FULL, display,
                                               log_dir, args.forever, args.port))
            finally:
                display.close()
    except BrokerUnavailableError as exc:
        print(f"error: no Kafka broker: {exc}", file=sys.stderr)
        print("hint: install a JDK 17+ and Maven, or set FOGVERSE_BOOTSTRAP=host:port",
              file=sys.stderr)
        return 2
    except DemoFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the demo's own handler was in place
        print("interrupted", file=sys.stderr)
        return 130
    summary["ok"] = summary["lost"] == 0 and summary["scaled_out"] > 0 \
        and summary["scaled_in"] > 0
    print_summary(summary)
    return 0 if summary["ok"] else 1


def print_summary(s: dict[str, Any]) -> None:
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} frames/s"

    rows = [
        ["ran for", f"{s['seconds']:.0f} s"],
        ["scaled out / in", f"{s['scaled_out']} / {s['scaled_in']} instance(s)"],
        ["most instances", str(s["peak_instances"])],
        ["throughput, 1 instance", rate(s["throughput_before"])],
        [f"throughput, {s['peak_instances']} instances", rate(s["throughput_after"])],
        ["instances over time", "  ".join(f"{t:.0f}s:{n}" for t, n in s["instances_over_time"])],
        ["instances ran on", ", ".join(f"{node} x{n}" for node, n in s["ran_on"].items()) or "-"],
        ["frames sent / delivered", f"{s['produced']} / {s['delivered']}"],
        ["messages lost", str(s["lost"])],
        ["delivered twice", f"{s['duplicates']} (at-least-once: frames in flight at a rebalance "
                            "come again)" if s["duplicates"] else "0"],
    ]
    print()
    print(render_table(["summary", ""], rows))
    print(json.dumps(s, sort_keys=True), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
