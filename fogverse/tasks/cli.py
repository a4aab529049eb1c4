"""``fogverse task submit|status|list``: tasks from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fogverse.constants import ENV_BOOTSTRAP, TASK_STATUS_TOPIC, TASKS_TOPIC
from fogverse.errors import ConfigError
from fogverse.observer import control_key_from_env
from fogverse.tasks.client import TaskClient
from fogverse.wire.tasks import TASK_STATES, TaskStatus

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("task", help="submit tasks and follow them")
    parser.add_argument("--bootstrap", default=os.environ.get(ENV_BOOTSTRAP, ""),
                        help=f"Kafka bootstrap servers (default: ${ENV_BOOTSTRAP})")
    parser.add_argument("--tasks-topic", default=TASKS_TOPIC)
    parser.add_argument("--status-topic", default=TASK_STATUS_TOPIC)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    submit = actions.add_parser("submit", help="submit one task; prints its id")
    submit.add_argument("task_type")
    submit.add_argument("--payload", default="null", help="the task's input as JSON")
    submit.add_argument("--priority", type=int, default=3, help="1 (low) to 10 (critical)")
    submit.add_argument("--cpu", type=float, default=0.1, help="cores it needs")
    submit.add_argument("--memory-mb", type=float, default=0.0)
    submit.add_argument("--gpu", action="store_true")
    submit.add_argument("--estimated-duration", type=float, default=None, metavar="SECONDS")
    submit.add_argument("--deadline-in", type=float, default=None, metavar="SECONDS",
                        help="worthless after this many seconds from now")
    submit.add_argument("--retry-limit", type=int, default=3)
    submit.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                        help="wait this long for the result and print it")
    submit.set_defaults(func=_submit)

    status = actions.add_parser("status", help="print one task's status as JSON")
    status.add_argument("task_id")
    status.set_defaults(func=_status)

    listing = actions.add_parser("list", help="print every task's status, one JSON a line")
    listing.add_argument("--state", choices=TASK_STATES, default=None)
    listing.set_defaults(func=_list)


def _client(args: argparse.Namespace) -> TaskClient:
    if not args.bootstrap:
        raise ConfigError("--bootstrap", "", f"give the Kafka servers (or set {ENV_BOOTSTRAP})")
    return TaskClient(args.bootstrap, tasks_topic=args.tasks_topic,
                      status_topic=args.status_topic, key=control_key_from_env())


def _submit(args: argparse.Namespace) -> int:
    try:
        payload: Any = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise ConfigError("--payload", args.payload, f"expected JSON: {exc}") from None
    deadline = None if args.deadline_in is None else time.time() + args.deadline_in
    with _client(args) as client:
        task_id = client.submit_task(
            args.task_type, payload, priority=args.priority, cpu=args.cpu,
            memory_mb=args.memory_mb, gpu=args.gpu,
            estimated_duration_s=args.estimated_duration, deadline=deadline,
            retry_limit=args.retry_limit,
        )
        if client.flush(10.0):
            print(f"fogverse: task {task_id} could not be delivered", file=sys.stderr)
            return 1
        print(task_id, flush=True)
        if args.wait is not None:
            status = client.wait(task_id, args.wait)
            _print(status)
            return 0 if status.state == "completed" else 1
    return 0


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.get_task_status(args.task_id)
    if status is None:
        print(f"fogverse: no status for task {args.task_id}", file=sys.stderr)
        return 1
    _print(status)
    return 0


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for status in client.list_tasks(args.state):
            _print(status)
    return 0


def _print(status: TaskStatus) -> None:
    print(json.dumps(asdict(status), default=repr), flush=True)
