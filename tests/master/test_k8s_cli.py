"""``fogverse k8s keda|deployment``: the objects printed from the Master's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fogverse.cli import main

CONFIG = """
consumer_servers = "127.0.0.1:9092"
consumer_group_id = "master-a"

[services.detector]
provider = "KUBERNETES"
version = "1.4"
module = "examples.autoscale.stage"
source_topic = "frames"
group_id = "detector"
min_instance = 1
max_instance = 6

[services.detector.extra_configs]
image = "registry.local/stage:1.4"
namespace = "vision"
keda = { lag_threshold = 50, cooldown_period = 120, bootstrap_servers = "kafka.kafka:9092" }

[services.counter]
provider = "KUBERNETES"
command = ["python3", "counter.py"]
[services.counter.extra_configs]
image = "registry.local/counter:2"

[services.local]
module = "app"
"""

LABELS = {
    "app.kubernetes.io/name": "detector",
    "app.kubernetes.io/version": "1-4",
    "app.kubernetes.io/managed-by": "fogverse",
    "io.fogverse.service": "detector",
    "io.fogverse.version": "1-4",
    "io.fogverse.master-id": "master-a",
}


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "master.toml"
    path.write_text(CONFIG)
    return str(path)


def test_keda_prints_a_scaled_object_for_the_declared_service(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["k8s", "keda", "detector", "--config", config]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "detector-1-4", "namespace": "vision", "labels": LABELS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": "detector-1-4"},
            "minReplicaCount": 1,
            "maxReplicaCount": 6,
            "cooldownPeriod": 120,
            "triggers": [{"type": "kafka", "metadata": {
                "bootstrapServers": "kafka.kafka:9092", "consumerGroup": "detector",
                "topic": "frames", "lagThreshold": "50", "offsetResetPolicy": "earliest"}}],
        },
    }  # fmt: skip


def test_keda_bootstrap_flag_and_json_output(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["k8s", "keda", "detector", "--config", config, "--bootstrap", "k:1",
                 "--json"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["spec"]["triggers"][0]["metadata"]["bootstrapServers"] == "k:1"


def test_deployment_prints_what_the_provider_creates(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["k8s", "deployment", "detector", "--config", config, "--replicas", "2"]) == 0
    out = capsys.readouterr().out
    assert "&id" not in out, "plain YAML, no anchors"
    body = yaml.safe_load(out)
    assert body["metadata"] == {"name": "detector-1-4", "namespace": "vision", "labels": LABELS}
    assert body["spec"]["replicas"] == 2
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python3", "-m", "examples.autoscale.stage"]
    assert {"name": "FOGVERSE_BOOTSTRAP", "value": "127.0.0.1:9092"} in container["env"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [(["keda", "counter"], "services.counter.source_topic"),
     (["keda", "local"], "services.local.provider"),
     (["deployment", "ghost"], "declared: counter, detector, local")],
)
def test_a_service_keda_cannot_scale_is_a_clear_error(
    config: str, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main(["k8s", *argv, "--config", config]) == 2  # a user mistake
    assert words in capsys.readouterr().err
