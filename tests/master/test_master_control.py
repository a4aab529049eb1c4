"""The master on a real broker: garbage, refused requests, /status, /metrics, the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from confluent_kafka import Producer

from deploy_scripts import DeployConfig, DeployResult, DeployScripts
from fogverse.control import AutoScaleRequest, Heartbeat, encode_control
from master import AutoScaleComponent, Worker
from master.scheduling.scoring import CHARGING_BONUS
from tests.metric_names import check_metric_names
from tests.polling import wait_until

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


def send_raw(servers: str, topic: str, payloads: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": servers})
    for payload in payloads:
        producer.produce(topic, payload)
    assert producer.flush(30) == 0


def fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


async def test_garbage_and_unsafe_requests_leave_the_master_running(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    control = unique("control")
    started: list[DeployConfig] = []

    def record(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        started.append(config)
        return DeployResult(f"rec-{len(started)}", lambda: None)

    scripts = DeployScripts()
    scripts.set_deploy_functions("REC", record)
    master = AutoScaleComponent().master_auto_scaler({
        "consumer_topic": control, "consumer_servers": kafka_bootstrap,
        "consumer_group_id": unique("master"), "http_port": 0,
        "included_worker": [Worker.AUTO_DEPLOYER, Worker.STATISTIC_WORKER,
                            Worker.INPUT_OUTPUT_WORKER],
        "auto_deployer_config": {"startup_grace": 0},
        "services": {"svc": {"provider": "REC", "max_instance": 2, "min_instance": 2,
                             "extra_configs": {"zone": "a"}}},
    }, scripts)
    await master.start()
    try:
        await asyncio.wait_for(master.ready.wait(), 60)  # it reads from the latest offset
        request = AutoScaleRequest("in", "out", "svc", "REC", max_instance=50,
                                   extra_configs={"zone": "b", "env": {"LD_PRELOAD": "x"},
                                                  "note": "hi"})
        send_raw(kafka_bootstrap, control, [
            b"", b"\xc1garbage", msgpack.packb([1, 2]),
            msgpack.packb({"kind": "reboot", "v": 1, "sent_at": 1e10, "body": {}}),
            encode_control(AutoScaleRequest("in", "x", "evil", "REC", 9), "evil"),
            encode_control(Heartbeat("old", "svc"), "old", sent_at=1.0),
            encode_control(request, "inst"),
            encode_control(Heartbeat("external", "svc", "in", "out", 5, 5, node_id="phone-7"),
                           "external"),
        ])
        await wait_until(lambda: master.deployer is not None and bool(master.deployer.stages()),
                         what="the request's stage to be planned")
        await wait_until(lambda: master.registry.get("external") is not None,
                         what="the valid heartbeat")
        status = master.status().master
        assert status.malformed == {"empty": 1, "not_msgpack": 1, "not_envelope": 1,
                                    "unknown_kind": 1, "stale": 1}
        assert status.refused == {"undeclared_service": 1}
        assert master.deployer is not None
        plan = master.deployer.plan(("in", "out"))
        assert plan is not None and plan.max_instance == 2  # capped by the config
        assert dict(plan.extra_configs) == {"zone": "a", "note": "hi"}  # no env, no override

        # /status and /metrics answer while all this happened.
        assert master.http is not None
        base = f"http://127.0.0.1:{master.http.port}"
        kind, body = await asyncio.to_thread(fetch, base + "/status")
        assert kind.startswith("application/json")
        served = json.loads(body)
        assert [s["stage"] for s in served["stages"]] == ["in->out"]
        assert served["stages"][0]["live"] == 1
        # Where things run, and why the deployer acted (rec-1 never heartbeats).
        await wait_until(lambda: bool(master.status().scale_actions),
                         what="the deployer's first scale-out")
        kind, body = await asyncio.to_thread(fetch, base + "/status")
        served = json.loads(body)
        instances = {i["instance_id"]: i for i in served["instances"]}
        assert instances["external"]["node"] == "phone-7"
        assert instances["external"]["state"] == "live"
        assert instances["rec-1"]["state"] == "starting"
        assert [n["source"] for n in served["nodes"]] == ["master"]
        # A node score is its free share times bonuses (mains x1.2, charging x1.5): not capped at 1.
        assert 0 < served["nodes"][0]["score"] <= CHARGING_BONUS
        first = served["scale_actions"][0]
        assert (first["stage"], first["action"], first["code"]) == (
            "in->out", "scale_out", "below_min")
        assert first in served["decisions"] and first["at"] > 1e9
        assert "pending" in served["tasks"]
        await _check_the_status_command(base)
        _, metrics = await asyncio.to_thread(fetch, base + "/metrics")
        text = metrics.decode()
        assert 'fogverse_master_dropped_messages_total{reason="not_msgpack"} 1.0' in text
        assert 'fogverse_stage_live_instances{stage="in->out"} 1.0' in text
        assert ('fogverse_master_scaling_decisions_total{action="scale_out",reason="below_min",'
                'stage="in->out"} 1.0') in text
        assert check_metric_names(text) == []
    finally:
        await master.close()


async def _check_the_status_command(base: str) -> None:
    """``fogverse status`` as a user runs it: a table in 100 columns, and JSON."""
    table = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "fogverse", "status", "--url", base],
        capture_output=True, text=True, timeout=60, check=False)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, table.stdout
    assert any(line.split()[:3] == ["external", "in->out", "phone-7"] for line in lines)
    assert any(line.split()[:2] == ["in->out", "svc"] for line in lines)
    assert any("scale_out" in line and "below_min: 1 instance(s) < min_instance 2" in line
               for line in lines)
    raw = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "fogverse", "status", "--url", base, "--json"],
        capture_output=True, text=True, timeout=60, check=False)
    assert raw.returncode == 0, raw.stderr
    assert {"stages", "instances", "nodes", "tasks", "decisions"} <= set(json.loads(raw.stdout))


def test_cli_runs_and_sigterm_stops_the_master_and_its_instances(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    control, source, target, group = (unique(p) for p in ("control", "in", "out", "slow"))
    config = tmp_path / "master.toml"
    config.write_text(f"""
consumer_topic = "{control}"
consumer_servers = "{kafka_bootstrap}"
included_worker = ["AUTO_DEPLOYER", "INPUT_OUTPUT_WORKER", "STATISTIC_WORKER"]
log_dir = "{tmp_path / 'logs'}"

[services.slow]
module = "examples.autoscale.slow_stage"
cwd = "{ROOT}"
source_topic = "{source}"
target_topic = "{target}"
group_id = "{group}"

[services.slow.env]
CONSUMER_TOPIC = "{source}"
PRODUCER_TOPIC = "{target}"
GROUP_ID = "{group}"
CONTROL_TOPIC = "{control}"
""")
    master = subprocess.Popen(
        [sys.executable, "-m", "fogverse", "master", "--config", str(config), "--http-port", "0"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert master.stderr is not None
        for line in master.stderr:
            lines.append(line)
            if "appeared" in line:  # the instance it started is heartbeating
                break
        else:
            pytest.fail("master exited early:\n" + "".join(lines))
        pid = _child_pid(lines)
        master.send_signal(signal.SIGTERM)
        _, rest = master.communicate(timeout=60)
        assert master.returncode == 0, "".join(lines) + rest
        assert "stopping 1 instance(s) started by this master" in rest
        assert not _alive(pid)
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()


def _child_pid(lines: list[str]) -> int:
    for line in lines:
        if "(pid " in line:
            return int(line.split("(pid ")[1].split(")")[0])
    raise AssertionError("no child pid logged:\n" + "".join(lines))


def _alive(pid: int) -> Any:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for all purposes once reaped.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


async def test_a_restarted_master_remembers_the_plans_it_learned(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    control, group, state = unique("control"), unique("master"), unique("state")
    scripts = DeployScripts()
    scripts.set_deploy_functions("REC", lambda logger, config: None)
    conf: dict[str, Any] = {
        "consumer_topic": control, "consumer_servers": kafka_bootstrap,
        "consumer_group_id": group, "http_port": None, "state_topic": state,
        "included_worker": ["AUTO_DEPLOYER"],
        "services": {"svc": {"provider": "REC", "max_instance": 4, "min_instance": 0}},
    }
    first = AutoScaleComponent().master_auto_scaler(conf, scripts)
    await first.start()
    try:
        await asyncio.wait_for(first.ready.wait(), 60)
        send_raw(kafka_bootstrap, control,
                 [encode_control(AutoScaleRequest("a", "b", "svc", "REC", 3), "inst")])
        await wait_until(lambda: first.deployer is not None
                         and first.deployer.plan(("a", "b")) is not None, what="the plan")
    finally:
        await first.close()
    # Tighter limits in the new config apply to what was remembered.
    conf["services"]["svc"]["max_instance"] = 2
    second = AutoScaleComponent().master_auto_scaler(conf, scripts)
    await second.start()
    try:
        assert second.deployer is not None
        plan = second.deployer.plan(("a", "b"))
        assert plan is not None and plan.max_instance == 2
    finally:
        await second.close()
