"""Master settings from FogVerse dictionaries and TOML, and the request-safety rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from fogverse.control import AutoScaleRequest
from fogverse.errors import ConfigError
from master import Worker, load_master_config, master_settings
from master.config import DEFAULT_HTTP_PORT
from master.plans import RequestRefused, plan_for_request, plan_for_service

README_CONF = {  # FogVerse README's example, spelling included
    "consumer_topic": "test",
    "consumer_server": "localhost:9092",
    "consumer_group_id": "test",
    "auto_deployer_config": {"deploy_delay": 30, "after_heartbeat_delay": 30},
    "statistic_worker_config": {"z_value": 1.5, "refresh_rate": 1, "maximum_seconds": 600},
    "included_worker": [Worker.AUTO_DEPLOYER, Worker.DISTRIBUTED_LOCK_WORKER,
                        Worker.STATISTIC_WORKER, Worker.INPUT_OUTPUT_WORKER],
    "distributed_worker_config": {"master_host": "localhost", "master_port": 4242},
    "input_output_worker_config": {"refresh_rate_second": 60,
                                   "input_output_ratio_threshold": 0.7},
}


def test_fogverse_readme_config_is_accepted() -> None:
    s = master_settings(README_CONF, env={})
    assert s.consumer_servers == "localhost:9092"
    assert s.deployer.deploy_delay == 30 and s.statistic.z_value == 1.5
    assert s.input_output.refresh_rate_second == 60
    assert s.workers == frozenset(Worker)
    assert (s.lock_host, s.lock_port) == ("localhost", 4242)


def test_defaults_are_the_documented_ones() -> None:
    s = master_settings({}, env={"FOGVERSE_BOOTSTRAP": "10.0.0.1:9092"})
    assert s.consumer_servers == "10.0.0.1:9092"
    assert (s.deployer.deploy_delay, s.deployer.after_heartbeat_delay) == (5.0, 3.0)
    assert (s.statistic.refresh_rate, s.statistic.maximum_seconds, s.statistic.z_value) == (
        1.0, 10.0, 2.0)
    assert s.input_output.input_output_ratio_threshold == 0.7
    assert s.instance_expiry_beats == 3 and s.http_port == DEFAULT_HTTP_PORT


@pytest.mark.parametrize(
    ("conf", "names"),
    [
        ({"consumer_topics": "x"}, "consumer_topics"),
        ({"auto_deployer_config": {"deploy_dely": 1}}, "auto_deployer_config.deploy_dely"),
        ({"auto_deployer_config": {"deploy_delay": -1}}, "auto_deployer_config"),
        ({"included_worker": ["AUTO_DEPLOYER", "MAGIC"]}, "included_worker"),
        ({"statistic_worker_config": {"maximum_seconds": 0.5}}, "statistic_worker_config"),
        ({"services": {"s": {"module": "m", "command": ["m"]}}}, "services.s.module/command"),
        ({"services": {"s": {"module": "m", "max_instance": 0}}},
         "services.s.min_instance/max_instance"),
        ({"services": {"s": {"provider": ""}}}, "services.s.provider"),
        ({"services": {"s": {"module": "m", "min_instance": 3, "max_instance": 2}}},
         "services.s.min_instance/max_instance"),
        ({"services": {"s": {"module": "m", "replicas": 2}}}, "services.s.replicas"),
        ({"http_port": "80"}, "http_port"),
        ({"instance_expiry_beats": 0}, "instance_expiry_beats"),
        ({"distributed_worker_config": {"max_connections": 0}},
         "distributed_worker_config.max_connections"),
        ({"distributed_worker_config": {"idle_timeout": "1m"}},
         "distributed_worker_config.idle_timeout"),
        ({"distributed_worker_config": {"default_lease": 60, "max_lease": 30}},
         "distributed_worker_config.default_lease"),
        ({"distributed_worker_config": {"max_leases": 30}},
         "distributed_worker_config.max_leases"),
    ],
)
def test_bad_settings_name_the_key(conf: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        master_settings(conf, env={})
    assert names in str(info.value)


def test_toml_file_with_services(tmp_path: Path) -> None:
    path = tmp_path / "master.toml"
    path.write_text("""
consumer_topic = "ctl"
included_worker = ["AUTO_DEPLOYER"]
http_port = 0
[services.slow]
module = "examples.autoscale.slow_stage"
cwd = "sub"
max_instance = 3
source_topic = "a"
target_topic = "b"
[services.slow.env]
SLOW_SECONDS = "0.5"
""")
    s = load_master_config(path, env={})
    assert s.workers == frozenset({Worker.AUTO_DEPLOYER})
    svc = s.services["slow"]
    assert svc.cwd == str(tmp_path / "sub") and svc.env == {"SLOW_SECONDS": "0.5"}
    plan = plan_for_service(svc)
    assert plan is not None and plan.stage == ("a", "b") and plan.max_instance == 3
    (tmp_path / "bad.toml").write_text("consumer_topic = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_master_config(tmp_path / "bad.toml")


def test_shipped_example_config_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    s = load_master_config(root / "examples" / "autoscale" / "master.toml", env={})
    assert s.services["slow"].cwd == str(root)


SERVICES = master_settings({"services": {
    "svc": {"provider": "REC", "min_instance": 1, "max_instance": 3,
            "extra_configs": {"zone": "a"}},
    "pinned": {"module": "m", "source_topic": "a", "target_topic": "b", "max_instance": 2},
    "floor": {"provider": "REC", "min_instance": 2, "max_instance": 5},
}}, env={}).services


@pytest.mark.parametrize(
    ("request_", "outcome"),
    [
        (AutoScaleRequest("a", "b", "svc", "REC", 2), (1, 2)),
        (AutoScaleRequest("a", "b", "svc", "REC", 99), (1, 3)),        # capped
        (AutoScaleRequest("a", "b", "svc", "REC", 3, min_instance=0), (1, 3)),  # floor kept
        (AutoScaleRequest("a", "b", "svc", "REC", 2, min_instance=5), (2, 2)),
        (AutoScaleRequest("a", "b", "ghost", "REC", 2), "undeclared_service"),
        (AutoScaleRequest("a", "b", "svc", "LOCAL", 2), "provider_mismatch"),
        (AutoScaleRequest("x", "b", "pinned", "LOCAL", 2), "topic_mismatch"),
        (AutoScaleRequest("a", "b", "pinned", "LOCAL", 5), (1, 2)),
        (AutoScaleRequest("a", "b", "floor", "REC"), (2, 5)),            # no max: declared
        (AutoScaleRequest("a", "b", "floor", "REC", 1), (2, 2)),         # min wins over max
        (AutoScaleRequest("a", "b", "floor", "REC", 1, min_instance=0), (2, 2)),
        (AutoScaleRequest("a", "b", "floor", "REC", 3, min_instance=9), (3, 3)),
    ],
)
def test_requests_are_held_to_the_config(
    request_: AutoScaleRequest, outcome: tuple[int, int] | str
) -> None:
    if isinstance(outcome, str):
        with pytest.raises(RequestRefused) as info:
            plan_for_request(request_, SERVICES)
        assert info.value.reason == outcome
        return
    plan = plan_for_request(request_, SERVICES)
    assert (plan.min_instance, plan.max_instance) == outcome


def test_request_extra_configs_cannot_override_or_inject() -> None:
    plan = plan_for_request(AutoScaleRequest(
        "a", "b", "svc", "REC", 2,
        extra_configs={"zone": "z", "env": {"PATH": "/evil"}, "args": ["--x"], "tier": 1},
    ), SERVICES)
    assert dict(plan.extra_configs) == {"zone": "a", "tier": 1}


def test_fogverse_hand_built_master_has_only_its_observers() -> None:
    from master import Master
    from workers.base import BaseWorker

    class Counting(BaseWorker):
        name = "counting"

    mine = Counting()
    master = Master(consumer_topic="ctl", consumer_servers="h:9092", consumer_group_id="g",
                    observers=[mine], possible_data_types=[])
    assert master.settings.workers == frozenset()
    assert master.deployer is None and master.statistic is None
    assert master.workers == [mine]
