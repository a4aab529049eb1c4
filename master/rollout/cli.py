"""``fogverse rollout SERVICE --to VERSION --strategy rolling|canary|blue-green``.

Sends a rollout request to the master over its control topic (signed with
``FOGVERSE_CONTROL_KEY`` when set) and returns; the master logs each step and
verdict, and ``/status`` (``workers.rollout``) shows the progress. Only names
travel: the version must be declared under ``services.<name>.versions`` in the
master's config (or be a tag of the declared image, for DOCKER and KUBERNETES).
"""

from __future__ import annotations

import argparse
import os
import sys

from confluent_kafka import Producer

from fogverse.constants import DEFAULT_CONTROL_TOPIC, ENV_BOOTSTRAP
from fogverse.control import RolloutRequest, encode_control
from fogverse.observer import control_key_from_env
from master.rollout.model import Strategy

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rollout", help="roll a service out to another of its versions",
        description="Ask the master to roll SERVICE out to VERSION. The master checks the "
        "version's needs against the nodes, replaces instances by the strategy, watches the "
        "new version's health and rolls back when it is bad. Follow it in the master's log "
        "or /status.")
    parser.add_argument("service")
    parser.add_argument("--to", required=True, metavar="VERSION",
                        help="a version declared in the master's config")
    parser.add_argument("--strategy", default="rolling",
                        choices=[s.value for s in Strategy])
    parser.add_argument("--bootstrap", default=os.environ.get(ENV_BOOTSTRAP, "localhost:9092"),
                        help=f"Kafka bootstrap servers (default: ${ENV_BOOTSTRAP})")
    parser.add_argument("--control-topic", default=DEFAULT_CONTROL_TOPIC,
                        help="the master's control topic (its consumer_topic)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    request = RolloutRequest(args.service, args.to, args.strategy)
    producer = Producer({"bootstrap.servers": args.bootstrap})
    producer.produce(args.control_topic,
                     encode_control(request, "fogverse-rollout", control_key_from_env()))
    if producer.flush(30):
        print(f"could not reach Kafka at {args.bootstrap} to send the request",
              file=sys.stderr)
        return 1
    print(f"asked the master on {args.control_topic} to roll {args.service} out to "
          f"{args.to} ({args.strategy}); follow it in its log or /status")
    return 0
