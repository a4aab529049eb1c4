"""The ``fogverse`` command (also ``python -m fogverse``).

Built-in subcommands:

``fogverse broker [--port N] [--kafka-version V] [--log-file PATH]``
    Run a real single-node Kafka in the foreground. Prints ``bootstrap HOST:PORT`` on
    stdout once it answers; Ctrl-C or SIGTERM stops it cleanly (exit status 0).
``fogverse broker --nodes N [--kafka-version V]``
    Run a KRaft cluster of N nodes on loopback, each its own JVM. Prints one line
    ``node ID port PORT pid PID`` per node, then ``bootstrap HOST:PORT,...``.
``fogverse fetch-jars [--kafka-version V] [--cache-dir DIR]``
    Download the broker's jars into the user cache and print their directory.
``fogverse agent --bootstrap S --node-id N [--master M] [--tags a,b] [--handlers m:o]``
    Run this device's node agent (``fogverse.agent``).
``fogverse task submit|status|list``
    Submit tasks and follow them (``fogverse.tasks``).
``fogverse status [--url U] [--json] [--watch [--interval S]]``
    Show a running master's stages, instances, nodes, tasks and recent scaling
    decisions (``fogverse.status_cli``).
``fogverse topics apply [topic.yaml]``
    Create or update the topics a FogVerse ``topic.yaml`` declares, on every cluster
    it names; prints one line per topic and cluster (``unchanged`` when nothing was due).

Adding a subcommand from another package
----------------------------------------
``fogverse`` never imports ``master``, ``workers`` or ``deploy_scripts``; they plug in
through the entry-point group ``fogverse.commands`` instead. Each entry point names a
callable ``register(subparsers) -> None`` that adds one subparser and sets its
``func``, a callable ``func(args: argparse.Namespace) -> int`` returning the exit
status::

    # pyproject.toml
    [project.entry-points."fogverse.commands"]
    master = "master.cli:register"

    # master/cli.py
    from __future__ import annotations  # argparse's generic is for type checkers only

    def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser("master", help="run the Master")
        parser.add_argument("--config")
        parser.set_defaults(func=run)

    def run(args: argparse.Namespace) -> int:
        ...
        return 0

Re-run ``pip install -e .`` after adding an entry point so Python sees it. A plug-in
that fails to load is reported on stderr and skipped; the other commands still work.

Errors
------
A command raises :class:`~fogverse.errors.FogVerseError` for anything it cannot
do; :func:`main` prints its first line and its ``hint``, never a traceback, and
exits 2 for a user's mistake (a bad setting, an unreachable broker, a port in
use, a missing program) and 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeAlias

from fogverse.agent.cli import register as register_agent
from fogverse.broker.cluster import KafkaCluster
from fogverse.broker.embedded import EmbeddedBroker
from fogverse.broker.jars import ensure_kafka_jars
from fogverse.broker.kafka_node import log_tail
from fogverse.errors import ConfigError, FogVerseError
from fogverse.ports import check_port_free
from fogverse.status_cli import register as register_status
from fogverse.tasks.cli import register as register_task

COMMAND_GROUP = "fogverse.commands"

if TYPE_CHECKING:
    # argparse's class is generic only to type checkers; subscripting it at run time fails.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
    Register: TypeAlias = Callable[[Subparsers], None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbosity)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except FogVerseError as exc:
        return report_error(exc, args.verbosity > 0)
    except KeyboardInterrupt:
        return 130


def report_error(exc: FogVerseError, verbose: bool = False) -> int:
    """Say what went wrong in one line and what to do in another; the exit status.

    A long story (a broker's log tail) is told only with ``-v``."""
    first, *details = str(exc).splitlines() or [type(exc).__name__]
    print(f"fogverse: {first}", file=sys.stderr)
    if details and verbose:
        print("\n".join(details), file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)
    elif details:
        print("hint: run again as `fogverse -v ...` for the details", file=sys.stderr)
    return 2 if exc.user_mistake else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fogverse", description="Self-scaling Kafka pipelines for edge and fog devices."
    )
    parser.add_argument(
        "-v", "--verbose", dest="verbosity", action="count", default=0, help="more log output"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in (_register_broker, _register_fetch_jars, register_agent, register_task,
                     _register_topics, register_status):
        register(subparsers)
    _register_plugins(subparsers)
    return parser


def _register_plugins(subparsers: Subparsers) -> None:
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            register: Register = ep.load()
            register(subparsers)
        except Exception as exc:
            print(
                f"fogverse: skipping command plug-in {ep.name} ({ep.value}): {exc!r}",
                file=sys.stderr,
            )


def _register_broker(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run a real Kafka broker (a cluster with --nodes N) in the foreground",
        description="Run a real single-node Kafka broker (KRaft) on 127.0.0.1 until "
        "Ctrl-C or SIGTERM. Prints 'bootstrap HOST:PORT' once it answers.",
    )
    parser.add_argument("--port", type=int, default=0, help="PLAINTEXT port (default: a free one)")
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="start a KRaft cluster of this many nodes, each its own JVM (default: 1)",
    )
    _add_version_option(parser)
    parser.add_argument(
        "--log-file",
        type=Path,
        default=None,
        help="keep the broker's log here (default: a temporary file removed on exit)",
    )
    parser.set_defaults(func=run_broker)


def _register_fetch_jars(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "fetch-jars",
        help="download the Kafka broker's jars with Maven (once per machine)",
    )
    _add_version_option(parser)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache root (default: $FOGVERSE_CACHE_DIR or ~/.cache/fogverse)",
    )
    parser.set_defaults(func=run_fetch_jars)


def _register_topics(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("topics", help="manage topics declared in topic.yaml")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    apply = actions.add_parser(
        "apply",
        help="create or update the declared topics on every cluster the file names",
        description="Create missing topics, grow partitions and set the declared configs "
        "on each named cluster; what already matches is left alone.",
    )
    apply.add_argument("file", type=Path, nargs="?", default=Path("topic.yaml"))
    apply.set_defaults(func=run_topics_apply)


def run_topics_apply(args: argparse.Namespace) -> int:
    import asyncio

    from fogverse.topics import apply_topic_file

    for change in asyncio.run(apply_topic_file(args.file)):
        print(change, flush=True)
    return 0


def _add_version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kafka-version",
        default=None,
        help="Kafka release (default: $FOGVERSE_KAFKA_VERSION or the known-good one)",
    )


def run_fetch_jars(args: argparse.Namespace) -> int:
    print(ensure_kafka_jars(args.kafka_version, args.cache_dir), flush=True)
    return 0


class _Terminated(BaseException):
    """Raised from the SIGTERM handler so the stack unwinds through broker.stop()."""


def run_broker(args: argparse.Namespace) -> int:
    if args.nodes != 1:
        return run_cluster(args)
    if args.port:
        check_port_free("--port", args.port)
    broker = EmbeddedBroker(args.port, kafka_version=args.kafka_version, log_path=args.log_file)
    with _sigterm_raises():
        try:
            broker.start()
            print(f"bootstrap {broker.bootstrap}", flush=True)
            status = broker.wait()
            tail = log_tail(broker.log_path) if broker.log_path else ""
            print(f"fogverse: Kafka exited on its own (status {status}):\n{tail}", file=sys.stderr)
            return 1
        except (_Terminated, KeyboardInterrupt):
            return 0
        finally:
            broker.stop()


def run_cluster(args: argparse.Namespace) -> int:
    if args.nodes < 1 or args.port or args.log_file:
        raise ConfigError("--nodes", args.nodes, "a cluster takes free ports and temporary logs:"
                          " use a count of 1 or more without --port or --log-file")  # fmt: skip
    cluster = KafkaCluster(args.nodes, kafka_version=args.kafka_version)
    with _sigterm_raises():
        try:
            cluster.start()
            for node in cluster.nodes():
                print(f"node {node.node_id} port {node.port} pid {node.pid}", flush=True)
            print(f"bootstrap {cluster.bootstrap}", flush=True)
            node_id = cluster.wait()
            tail = log_tail(cluster.nodes()[node_id - 1].log_path)
            print(f"fogverse: Kafka node {node_id} exited on its own:\n{tail}", file=sys.stderr)
            return 1
        except (_Terminated, KeyboardInterrupt):
            return 0
        finally:
            cluster.stop()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _configure_logging(verbosity: int) -> None:
    level = logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Only our own loggers get chatty; third-party libraries stay at WARNING.
    logging.getLogger("fogverse").setLevel(level)
