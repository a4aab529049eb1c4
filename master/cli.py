"""``fogverse master --config master.toml``: run the Master in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import replace

from master.config import load_master_config, master_settings
from master.errors import MasterFailedError
from master.master import Master

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "master",
        help="run the Master: watch heartbeats, scale stages out and in",
        description="Run the Master until Ctrl-C or SIGTERM; on exit it stops every "
        "instance it started (unless --leave-running). A master restarted after a crash "
        "adopts the instances that still run. See master/config.py for the config keys.",
    )
    parser.add_argument("--config", help="master.toml (default: built-in defaults)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides the config)")
    parser.add_argument("--http-port", type=int, default=None,
                        help="status server port (0: any free port; overrides the config)")
    parser.add_argument("--leave-running", action="store_true",
                        help="on exit, leave the instances running for the next master to "
                        "adopt (default: stop them)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_master_config(args.config) if args.config else master_settings({})
    if args.bootstrap:
        settings = replace(settings, consumer_servers=args.bootstrap)
    if args.http_port is not None:
        settings = replace(settings, http_port=args.http_port)
    if args.leave_running:
        settings = replace(settings, leave_running=True)
    # The CLI turns on INFO for "fogverse"; decisions log under fogverse.master.
    logging.getLogger("fogverse.master").setLevel(logging.getLogger("fogverse").level)
    try:
        asyncio.run(Master(settings).run())
    except MasterFailedError as exc:
        logging.getLogger("fogverse.master").error("master failed: %s", exc)
        return 1
    return 0
