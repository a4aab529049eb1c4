"""``fogverse status``: what a running master knows, as tables or JSON.

Reads the master's ``/status`` over HTTP (the standard library's client: the
command works wherever ``fogverse`` is installed, with or without the master's
packages) and renders it with :func:`fogverse.status_table.render_status`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from fogverse.constants import DEFAULT_MASTER_HTTP_PORT, ENV_MASTER_URL
from fogverse.errors import ConfigError, MasterUnreachableError
from fogverse.status_table import DEFAULT_WIDTH, render_status

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["fetch_status", "register"]

DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_MASTER_HTTP_PORT}"
_CLEAR = "\x1b[H\x1b[2J"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "status", help="show a running master's stages, instances, nodes and decisions",
        description="Fetch a master's /status and print it as tables (or JSON).")
    parser.add_argument("--url", default=os.environ.get(ENV_MASTER_URL, DEFAULT_URL),
                        help=f"the master's HTTP address (default: ${ENV_MASTER_URL} or "
                        f"{DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="print the raw /status JSON")
    parser.add_argument("--watch", action="store_true",
                        help="refresh until Ctrl-C (a lost master is retried, not fatal)")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                        help="seconds between refreshes with --watch (default: 2)")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH,
                        help=f"table width in columns (default: {DEFAULT_WIDTH})")
    parser.set_defaults(func=run_status)


def fetch_status(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The master's /status as a dict; MasterUnreachableError when it cannot be had."""
    address = url.rstrip("/") + "/status"
    if not address.startswith(("http://", "https://")):
        raise ConfigError("--url", url, "expected an http:// address, e.g. " + DEFAULT_URL)
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MasterUnreachableError(
            f"no master status at {address} ({reason})",
            hint=f"start one with `fogverse master`, or point --url / ${ENV_MASTER_URL} at "
            "its http_port") from None


def run_status(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise ConfigError("--interval", args.interval, "must be a positive number of seconds")
    if not args.watch:
        _show(fetch_status(args.url), args)
        return 0
    while True:
        try:
            status = fetch_status(args.url)
        except MasterUnreachableError as exc:
            print(f"{_CLEAR}fogverse: {exc} (retrying every {args.interval:g}s)", flush=True)
        else:
            if not args.json:
                sys.stdout.write(_CLEAR)
            _show(status, args)
        time.sleep(args.interval)


def _show(status: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(status, sort_keys=True), flush=True)
    else:
        print(render_status(status, args.width), end="", flush=True)
