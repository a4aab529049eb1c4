"""``fogverse agent``: run this device's node agent in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from fogverse.agent.agent import Agent, AgentSettings
from fogverse.agent.handlers import load_handlers
from fogverse.constants import (
    ENV_AGENT_HANDLERS,
    ENV_BOOTSTRAP,
    ENV_NODE_ID,
    NODE_ORDERS_TOPIC,
    NODES_TOPIC,
)
from fogverse.errors import ConfigError
from fogverse.observer import control_key_from_env

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register", "run_agent"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "agent", help="run this device's node agent",
        description="Report this device's capacity to the master over Kafka and run the "
        "tasks and stage instances it places here. Device profiles come from BATTERY, "
        "CHARGING, THERMAL, MEMORY_GB, CPU_CORES, GPU and AIV_MOBILE_PROFILE.",
    )
    parser.add_argument("--master", default="",
                        help="id of the master whose orders count (default: any)")
    parser.add_argument("--bootstrap", default=os.environ.get(ENV_BOOTSTRAP, ""),
                        help=f"Kafka bootstrap servers (default: ${ENV_BOOTSTRAP})")
    parser.add_argument("--node-id", default=os.environ.get(ENV_NODE_ID) or socket.gethostname(),
                        help=f"this node's id (default: ${ENV_NODE_ID} or the host name)")
    parser.add_argument("--tags", default="", help="comma-separated tags, e.g. phone,camera")
    parser.add_argument("--handlers", action="append", default=[], metavar="MODULE:OBJECT",
                        help="task handlers to load (repeatable; also "
                        f"${ENV_AGENT_HANDLERS} and the fogverse.task_handlers entry points)")
    parser.add_argument("--max-tasks", type=int, default=2,
                        help="tasks run at once (default 2, the seed's per-node limit)")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between capacity reports (default 2)")
    parser.add_argument("--nodes-topic", default=NODES_TOPIC)
    parser.add_argument("--orders-topic", default=NODE_ORDERS_TOPIC)
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where instances' logs go (default: a temporary directory)")
    parser.add_argument("--profile-file", type=Path, default=None,
                        help="KEY=VALUE device profile re-read before every report, over "
                        "the environment's (BATTERY=15, THERMAL=70...)")
    parser.set_defaults(func=run_agent)


def run_agent(args: argparse.Namespace) -> int:
    if not args.bootstrap:
        raise ConfigError("--bootstrap", "", f"give the Kafka servers (or set {ENV_BOOTSTRAP})")
    if args.max_tasks < 0:
        raise ConfigError("--max-tasks", args.max_tasks, "expected 0 or more")
    if args.interval <= 0:
        raise ConfigError("--interval", args.interval, "expected a positive number of seconds")
    env_specs = [s for s in os.environ.get(ENV_AGENT_HANDLERS, "").split(",") if s.strip()]
    handlers = load_handlers([*env_specs, *args.handlers])
    settings = AgentSettings(
        node_id=args.node_id, bootstrap=args.bootstrap, master=args.master,
        tags=tuple(t.strip() for t in args.tags.split(",") if t.strip()),
        max_tasks=args.max_tasks, interval=args.interval, nodes_topic=args.nodes_topic,
        orders_topic=args.orders_topic, key=control_key_from_env(), log_dir=args.log_dir,
        profile_file=args.profile_file,
    )
    asyncio.run(Agent(settings, handlers).run())
    return 0
