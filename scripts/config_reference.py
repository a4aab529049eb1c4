"""Writes docs/configuration.md from the code: every setting, its default and what it does.

The names, types and defaults are read from the dataclasses and TypedDicts that
the code itself validates against (``StageConfig``, ``MasterAutoScalerConfig``
and its sections, ``ServiceSpec``, the scheduler's ``Policies``, the ``fogverse
agent`` parser). Descriptions come from each field's docstring; the few fields
without one get a line from ``NOTES`` below, and a note for a field that no
longer exists is an error, so the two cannot drift apart.

    python scripts/config_reference.py           # rewrite docs/configuration.md
    python scripts/config_reference.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy_scripts import ServiceSpec  # noqa: E402
from fogverse.agent import cli as agent_cli  # noqa: E402
from fogverse.agent.profile import PRESETS  # noqa: E402
from fogverse.config import ENV_NAMES, StageConfig  # noqa: E402
from master import config as master_config  # noqa: E402
from master.fleet import FleetSettings  # noqa: E402
from master.rollout import RolloutSettings  # noqa: E402
from master.scheduling import Policies  # noqa: E402
from master.scheduling.autoscale import DeployerSettings  # noqa: E402
from workers.input_output import InputOutputSettings  # noqa: E402
from workers.lock_limits import LockLimits  # noqa: E402
from workers.statistic import StatisticSettings  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"

NOTES: Mapping[str, str] = {
    # StageConfig
    "StageConfig.consumer_topic": "Topic(s) to read; a string or a list.",
    "StageConfig.producer_topic": "Topic to write results to; none for a sink.",
    "StageConfig.consumer_servers": "Kafka bootstrap servers.",
    "StageConfig.client_id": "Kafka client id (defaults to the stage and host).",
    "StageConfig.error_policy": "What a failing message does: `dead-letter`, `skip` or `stop`.",
    "StageConfig.batch_size": "Messages fetched per poll at most.",
    "StageConfig.fetch_timeout": "Seconds a poll waits for messages.",
    "StageConfig.commit_interval": "Seconds between offset commits (commits are batched).",
    "StageConfig.connect_attempts": "Tries to reach the brokers at start.",
    "StageConfig.connect_backoff": "Seconds before the first retry, doubling.",
    "StageConfig.shutdown_timeout": "Seconds a stop waits for in-flight work.",
    "StageConfig.heartbeat_interval": "Seconds between heartbeats to the master.",
    "StageConfig.control_topic": "The master's control topic (heartbeats, scale requests).",
    "StageConfig.heartbeat": "Send heartbeats at all.",
    "StageConfig.profiling_csv": "Write a row per message (timings) to this CSV file.",
    "StageConfig.kafka_extra": "Client options for both consumer and producer (security, SASL).",
    "StageConfig.consumer_extra": "Options for the consumer only.",
    "StageConfig.producer_extra": "Options for the producer only.",
    # MasterAutoScalerConfig
    "master.consumer_topic": "The control topic the master reads.",
    "master.consumer_servers": "Kafka bootstrap servers (else `$FOGVERSE_BOOTSTRAP`).",
    "master.consumer_server": "FogVerse's spelling of `consumer_servers`.",
    "master.consumer_group_id": "The master's group; also namespaces its state records.",
    "master.included_worker": "Which workers run (default: all of them).",
    "master.services": "The services the master may deploy (below).",
    "master.instance_expiry_beats": "Missed heartbeats before an instance counts as gone.",
    "master.http_host": "Where /status and /metrics listen.",
    "master.http_port": "Their port; 0 picks one, none turns them off.",
    "master.control_key": "HMAC key for control messages (else `$FOGVERSE_CONTROL_KEY`).",
    "master.log_dir": "Where LOCAL instances' logs go.",
    "DistributedWorkerConfig.master_port": "The lock service's port.",
    "master.kafka_extra": "Client options (security, SASL) for every client of the master.",
    "master.auto_deployer_config": "Section below.",
    "master.statistic_worker_config": "Section below.",
    "master.input_output_worker_config": "Section below.",
    "master.distributed_worker_config": "Section below.",
    "master.fleet_config": "Section below; node agents and tasks.",
    # sections
    "DeployerSettings.deploy_delay": "Seconds after an action before the next.",
    "DeployerSettings.after_heartbeat_delay": "Seconds after a new instance's first beat.",
    "StatisticSettings.z_value": "z-score above which a rate is a spike, not a level.",
    "StatisticSettings.refresh_rate": "Seconds between rate samples.",
    "StatisticSettings.maximum_seconds": "Seconds of samples the spike filter keeps.",
    "InputOutputSettings.refresh_rate_second": "Seconds between looks at each stage.",
    "InputOutputSettings.input_output_ratio_threshold": "Output/input under this: too slow.",
    "InputOutputSettings.window_seconds": "Seconds of samples ratios and lag growth use.",
    "InputOutputSettings.min_samples": "Samples needed before judging.",
    "InputOutputSettings.idle_lag": "Lag at or under this counts as idle (scale-in).",
    "InputOutputSettings.scale_in_ratio": "Output/input needed to scale in.",
    "InputOutputSettings.scale_in_hold": "Seconds idle before a scale-in.",
    "InputOutputSettings.scale_in_utilization": "Busy share the remaining instances may reach.",
    "FleetConfig.enabled": "Run the fleet (default: when a service uses AGENT).",
    "FleetConfig.master_id": "Agents started with `--master` obey only this id.",
    "FleetConfig.misses": "Reports a node may miss before it is lost.",
    "FleetConfig.nodes_topic": "Where agents report capacity.",
    "FleetConfig.orders_topic": "Where the master sends agents orders.",
    "FleetConfig.tasks_topic": "Where tasks are submitted.",
    "FleetConfig.status_topic": "Where task results are reported.",
    "FleetConfig.policies": "The scheduler's policies (section below).",
    # ServiceSpec
    "ServiceSpec.provider": "Deploy provider: LOCAL, AGENT, DOCKER, KUBERNETES, or yours.",
    "ServiceSpec.module": "Run as `python -m module` (LOCAL, AGENT).",
    "ServiceSpec.command": "Or an argv to run, no shell.",
    "ServiceSpec.env": "Environment for the instance (settings such as CONSUMER_TOPIC).",
    "ServiceSpec.cwd": "Working directory (relative: to the config file).",
    "ServiceSpec.min_instance": "Instances kept at least.",
    "ServiceSpec.max_instance": "Instances allowed at most (caps a request's).",
    "ServiceSpec.source_topic": "The stage's input topic; partitions are added only here.",
    "ServiceSpec.target_topic": "The stage's output topic.",
    "ServiceSpec.group_id": "The stage's consumer group (for lag).",
    "ServiceSpec.extra_configs": "Passed to the provider, winning over a request's.",
    "ServiceSpec.version": "The name of the version declared here (for rollouts).",
    "ServiceSpec.versions": "Other versions it may be rolled out to (`deploy_scripts.version`).",
    # Policies
    "Policies.prefer_charging_nodes": "Favour devices on a charger.",
    "Policies.battery_minimum_percent": "Under this (not charging): no work.",
    "Policies.thermal_throttle_threshold": "CPU degrees C from which a node is too hot.",
    "Policies.max_concurrent_tasks_per_node": "Tasks a node runs at once.",
    "Policies.task_timeout_multiplier": "A task times out at this times its estimate.",
    "Policies.cluster_size_target": "Nodes per cluster.",
    "Policies.long_task_seconds": "Tasks estimated longer than this are long.",
    "Policies.long_task_battery_percent": "Long tasks skip batteries under this unless charging.",
    "Policies.large_input_mb": "Inputs larger than this weigh the node's network.",
    "Policies.reference_bandwidth_mbps": "Bandwidth that counts as full network score.",
    "Policies.battery_save_seconds": "Battery-save window of the deadline planner.",
    "Policies.default_strategy": "Placement strategy: score, round_robin, least_loaded, ...",
    "Policies.max_defer_seconds": "How long the deadline planner may hold a task.",
}

_used_notes: set[str] = set()


def attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written under class attributes (``x: int = 1`` then ``\"\"\"...\"\"\"``)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def describe(owner: str, name: str, docs: Mapping[str, str]) -> str:
    key = f"{owner}.{name}"
    if key in NOTES:
        _used_notes.add(key)
    return docs.get(name) or NOTES.get(key, "")


def default_of(cls: type, name: str) -> str:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return _show(f.default)
            if f.default_factory is not dataclasses.MISSING:
                return _show(f.default_factory())
            return "required"
    return ""


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, frozenset | set):
        return ", ".join(sorted(str(v) for v in value))
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, tuple) and not value:
        return "()"
    return str(value)


def _type(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(
        annotation, "__forward_arg__", None) or getattr(annotation, "__name__", str(annotation))
    return text.replace("NotRequired[", "").rstrip("]") if "NotRequired[" in text else text


def table(headers: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|") if text else " "

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def dataclass_table(cls: type, owner: str, skip: tuple[str, ...] = (),
                    env: Mapping[str, str] | None = None) -> str:
    docs = attribute_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        row = [f"`{f.name}`", f"`{_type(f.type)}`", default_of(cls, f.name),
               describe(owner, f.name, docs)]
        if env is not None:
            row.insert(1, f"`{env[f.name]}`" if f.name in env else "")
        rows.append(row)
    headers = ["setting", "type", "default", "meaning"]
    if env is not None:
        headers.insert(1, "environment")
    return table(headers, rows)


def section_table(schema: type, owner: str, defaults: type | None,
                  fixed: Mapping[str, str] | None = None, docs_from: type | None = None) -> str:
    """The keys of a TypedDict section, with defaults from the dataclass they build."""
    docs = {**(attribute_docs(docs_from or defaults) if docs_from or defaults else {}),
            **attribute_docs(schema)}
    rows = []
    for name, annotation in schema.__annotations__.items():
        default = (fixed or {}).get(name) or (default_of(defaults, name) if defaults else "")
        rows.append([f"`{name}`", f"`{_type(annotation)}`", default,
                     describe(owner, name, docs)])
    return table(["key", "type", "default", "meaning"], rows)


def master_defaults() -> dict[str, str]:
    settings = master_config.MasterSettings()
    fixed = {name: _show(getattr(settings, name)) for name in
             master_config.MasterAutoScalerConfig.__annotations__ if hasattr(settings, name)}
    fixed.update({
        "consumer_servers": "`$FOGVERSE_BOOTSTRAP`, else \"localhost:9092\"",
        "consumer_server": "", "included_worker": "all four",
        "control_key": "`$FOGVERSE_CONTROL_KEY`, else none", "services": "{}",
        "fleet_config": "absent", "kafka_extra": "{}",
    })
    for section in ("auto_deployer_config", "statistic_worker_config",
                    "input_output_worker_config", "distributed_worker_config"):
        fixed[section] = "see below"
    return fixed


_FROM_ENVIRONMENT = frozenset({"--bootstrap", "--node-id"})


def agent_options() -> str:
    parser = argparse.ArgumentParser(prog="fogverse")
    agent_cli.register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    agent = sub.choices["agent"]
    rows = []
    for action in agent._actions:
        if not action.option_strings or "-h" in action.option_strings:
            continue
        option = action.option_strings[-1]
        if option in _FROM_ENVIRONMENT:  # read when the parser is built: not a constant
            default = "from the environment"
        elif action.default in (None, "", [], argparse.SUPPRESS):
            default = ""
        else:
            default = f"`{action.default}`"
        rows.append([f"`{option}`", default, " ".join((action.help or "").split())])
    return table(["option", "default", "meaning"], rows)


def presets() -> str:
    return table(["AIV_MOBILE_PROFILE", "sets"], [
        [f"`{name}`", ", ".join(f"`{k}={v}`" for k, v in values.items())]
        for name, values in PRESETS.items()])


def sections() -> Iterator[str]:
    mc = master_config
    yield ("# Configuration reference\n\n"
           "Generated from the code by `python scripts/config_reference.py`; "
           "`tests/test_config_reference.py` fails when this file is out of date. "
           "Each setting's full story is in the docstring of the class named in its section.")
    yield ("## Stage settings (`fogverse.StageConfig`)\n\n"
           "Constructor keyword arguments beat the environment, which beats class or "
           "instance attributes' defaults; a misspelt name fails naming the closest one.\n\n"
           + dataclass_table(StageConfig, "StageConfig", env=ENV_NAMES))
    yield ("## The Master (`master.config.MasterAutoScalerConfig`)\n\n"
           "Top-level keys of `master.toml` (or the mapping given to `master_settings`). "
           "An unknown key fails naming the known ones.\n\n"
           + section_table(mc.MasterAutoScalerConfig, "master", None, master_defaults(),
                         docs_from=mc.MasterSettings))
    yield ("### `auto_deployer_config` (`DeployerSettings`)\n\n"
           + section_table(mc.AutoDeployerConfig, "DeployerSettings", DeployerSettings))
    yield ("### `statistic_worker_config` (`StatisticSettings`)\n\n"
           + section_table(mc.StatisticWorkerConfig, "StatisticSettings", StatisticSettings))
    yield ("### `input_output_worker_config` (`InputOutputSettings`)\n\n"
           + section_table(mc.InputOutputWorkerConfig, "InputOutputSettings",
                           InputOutputSettings))
    settings = mc.MasterSettings()
    yield ("### `distributed_worker_config`\n\n"
           + section_table(mc.DistributedWorkerConfig, "DistributedWorkerConfig", LockLimits, {
               "master_host": _show(settings.lock_host), "master_port": str(settings.lock_port),
               "bind_host": _show(settings.lock_bind_host)}))
    fleet_defaults = {name: default_of(FleetSettings, name)
                      for name in mc.FleetConfig.__annotations__
                      if name in {f.name for f in dataclasses.fields(FleetSettings)}}
    fleet_defaults.update({"enabled": "when a service uses AGENT",
                           "policies": "see below"})
    yield ("### `fleet_config`\n\n"
           + section_table(mc.FleetConfig, "FleetConfig", None, fleet_defaults))
    yield ("### `fleet_config.policies` (`master.scheduling.Policies`)\n\n"
           + dataclass_table(Policies, "Policies"))
    yield ("### `rollout_config` (`master.rollout.RolloutSettings`)\n\n"
           "How `fogverse rollout` / `Master.rollout` go (see `master/rollout/`).\n\n"
           + dataclass_table(RolloutSettings, "RolloutSettings"))
    yield ("### `services.<name>` (`deploy_scripts.ServiceSpec`)\n\n"
           "The table's name is the service's name.\n\n"
           + dataclass_table(ServiceSpec, "ServiceSpec", skip=("name",)))
    yield ("## Node agents (`fogverse agent`)\n\n" + agent_options()
           + "\n\nDevice profile variables (see `fogverse/agent/profile.py`): `BATTERY`, "
           "`CHARGING`, `THERMAL`, `MEMORY_GB`, `CPU_CORES`, `CPU_PERCENT`, `GPU`, and "
           "presets that fill the ones left unset:\n\n" + presets())


def render() -> str:
    _used_notes.clear()
    text = "\n\n".join(sections()) + "\n"
    stale = sorted(set(NOTES) - _used_notes)
    if stale:
        raise SystemExit(f"NOTES name fields the code no longer has: {', '.join(stale)}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run "
                  "python scripts/config_reference.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
