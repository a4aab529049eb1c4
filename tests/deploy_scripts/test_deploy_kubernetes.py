"""The KUBERNETES provider, asserted on the requests it sends through the real client.

No API server can run here: the client's HTTP layer is a recording stub
(tests/deploy_scripts/kube_http.py) answering as an API server would. What is
checked is what goes over the wire: the Deployment created, the replica patches
and their resourceVersion, the Deployment of a new version, and each error's
reason and text.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import Any

import pytest

from deploy_scripts import DeployError, DeployScripts
from deploy_scripts.kubernetes import KubernetesProvider
from deploy_scripts.kubernetes_api import KubernetesDeployError, kubernetes_client
from deploy_scripts.kubernetes_manifest import deployment_body
from deploy_scripts.kubernetes_spec import KubernetesServiceSpec, kubernetes_version
from deploy_scripts.version import ServiceVersion, with_version
from fogverse.constants import INFO_VERSION, PROVIDER_KUBERNETES
from master.deployer import AutoDeployer
from master.plans import StagePlan
from master.scheduling.autoscale import DeployerSettings
from tests.deploy_scripts.kube_http import (
    RecordingHttp,
    apps_api,
    live_deployment,
    scale,
    status,
)
from workers.registry import InstanceRegistry

log = logging.getLogger(__name__)

SPEC = KubernetesServiceSpec(
    "detector", "registry.local/stage:1.4", version="1.4", namespace="vision",
    command=("python3", "-m", "examples.autoscale.stage"), env={"MODEL": "yolo"},
    labels={"team": "vision"}, resources={"requests": {"cpu": "250m", "memory": "128Mi"}},
    max_instance=3,
)  # fmt: skip
BASE_ENV = {"FOGVERSE_BOOTSTRAP": "kafka.kafka:9092", "CONTROL_TOPIC": "fogverse-control"}
MASTER = "master-a"
DEPLOYMENTS = "/apis/apps/v1/namespaces/vision/deployments"
V14 = f"{DEPLOYMENTS}/detector-1-4"

LABELS = {
    "team": "vision",
    "app.kubernetes.io/name": "detector",
    "app.kubernetes.io/version": "1-4",
    "app.kubernetes.io/managed-by": "fogverse",
    "io.fogverse.service": "detector",
    "io.fogverse.version": "1-4",
    "io.fogverse.master-id": MASTER,
}
CREATED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "detector-1-4", "namespace": "vision", "labels": LABELS},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"io.fogverse.service": "detector",
                                     "io.fogverse.version": "1-4",
                                     "io.fogverse.master-id": MASTER}},
        "template": {
            "metadata": {"labels": LABELS},
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "containers": [{
                    "name": "stage",
                    "image": "registry.local/stage:1.4",
                    "command": ["python3", "-m", "examples.autoscale.stage"],
                    "env": [
                        {"name": "FOGVERSE_BOOTSTRAP", "value": "kafka.kafka:9092"},
                        {"name": "CONTROL_TOPIC", "value": "fogverse-control"},
                        {"name": "MODEL", "value": "yolo"},
                        {"name": "FOGVERSE_SERVICE_NAME", "value": "detector"},
                        {"name": "FOGVERSE_VERSION", "value": "1.4"},
                        {"name": "FOGVERSE_INSTANCE_ID",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "FOGVERSE_NODE_ID",
                         "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    ],
                    "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}},
                }],
            },
        },
    },
}  # fmt: skip


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "SERVER"}}]
users: [{name: u, user: {token: t0ken}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def existing(replicas: int, rv: str, spec: KubernetesServiceSpec = SPEC) -> dict[str, Any]:
    body = deployment_body(spec, BASE_ENV, MASTER)
    return live_deployment(body, replicas=replicas, resource_version=rv)


def foreign_image(deployment: dict[str, Any], image: str) -> dict[str, Any]:
    """``deployment`` as if someone had set its container's image to ``image``."""
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return deployment


@pytest.fixture
def http() -> RecordingHttp:
    return RecordingHttp()


@pytest.fixture
def provider(http: RecordingHttp) -> KubernetesProvider:
    return KubernetesProvider({"detector": SPEC}, BASE_ENV, master_id=MASTER,
                              api=apps_api(http))  # fmt: skip


def requests(http: RecordingHttp) -> list[tuple[str, str]]:
    return [(s.method, s.path) for s in http.sent]


# -- starting and stopping -------------------------------------------------------------


def test_the_first_instance_creates_the_versions_deployment(
    http: RecordingHttp, provider: KubernetesProvider
) -> None:
    http.answer(404, status(404, "NotFound", 'deployments.apps "detector-1-4" not found'))
    http.answer(201, existing(1, "100"))
    result = provider(log, {"service_name": "detector"})
    assert requests(http) == [("GET", V14), ("POST", DEPLOYMENTS)]
    assert http.sent[1].body == CREATED
    assert result.instance_id.startswith("detector-1-4-")
    assert result.info == {"namespace": "vision", "deployment": "detector-1-4",
                           "service": "detector", "version": "1.4",
                           "image": "registry.local/stage:1.4"}  # fmt: skip


def test_another_instance_adds_a_replica_guarded_by_the_resource_version(
    http: RecordingHttp, provider: KubernetesProvider
) -> None:
    http.answer(200, existing(1, "41")).answer(200, scale("detector-1-4", "vision", 2, "42"))
    provider(log, {"service_name": "detector"})
    assert requests(http) == [("GET", V14), ("PATCH", f"{V14}/scale")]
    patch = http.sent[1]
    assert patch.body == {"metadata": {"resourceVersion": "41"}, "spec": {"replicas": 2}}
    assert patch.headers["Content-Type"] == "application/strategic-merge-patch+json"


def test_a_new_version_gets_a_deployment_of_its_own_image(
    http: RecordingHttp, provider: KubernetesProvider
) -> None:
    # As a rollout asks: the version travels in the DeployConfig (deploy_scripts.version).
    v2 = ServiceVersion("2.0-rc1", image="registry.local/stage:2.0-rc1", env={"MODEL": "v9"})
    http.answer(404, status(404, "NotFound", "not found"))
    http.answer(201, existing(1, "7", kubernetes_version(SPEC, v2)))
    result = provider(log, with_version({"service_name": "detector"}, v2))
    assert requests(http) == [("GET", f"{DEPLOYMENTS}/detector-2-0-rc1"), ("POST", DEPLOYMENTS)]
    created = http.sent[1].body
    assert created["metadata"]["name"] == "detector-2-0-rc1"
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/stage:2.0-rc1"
    assert {"name": "MODEL", "value": "v9"} in container["env"]
    assert {"name": "FOGVERSE_VERSION", "value": "2.0-rc1"} in container["env"]
    assert created["spec"]["selector"]["matchLabels"]["io.fogverse.version"] == "2-0-rc1"
    assert result.info[INFO_VERSION] == "2.0-rc1"
    # The old version's Deployment was not touched: no rolling update of its pods.
    assert all("detector-1-4" not in path for _, path in requests(http))


def test_stopping_lowers_the_replicas_and_the_last_stop_deletes_the_deployment(
    http: RecordingHttp, provider: KubernetesProvider
) -> None:
    http.answer(404, status(404, "NotFound", "none")).answer(201, existing(1, "1"))
    http.answer(200, existing(1, "1")).answer(200, scale("detector-1-4", "vision", 2, "2"))
    first = provider(log, {"service_name": "detector"})
    second = provider(log, {"service_name": "detector"})
    del http.sent[:]

    http.answer(200, existing(2, "2")).answer(200, scale("detector-1-4", "vision", 1, "3"))
    assert second.stop() == 1
    http.answer(200, existing(1, "3")).answer(200, status(200, "Success", "deleted"))
    assert first.stop() == 0
    http.answer(404, status(404, "NotFound", "gone"))
    assert first.stop() == 0, "a repeated stop is harmless"
    assert requests(http) == [("GET", V14), ("PATCH", f"{V14}/scale"),
                              ("GET", V14), ("DELETE", V14), ("GET", V14)]  # fmt: skip
    assert http.sent[1].body == {"metadata": {"resourceVersion": "2"}, "spec": {"replicas": 1}}
    assert http.sent[3].body == {"propagationPolicy": "Background",
                                 "preconditions": {"resourceVersion": "3"}}  # fmt: skip


def test_a_deployment_changed_by_someone_else_is_read_again_not_overwritten(
    http: RecordingHttp, provider: KubernetesProvider
) -> None:
    http.answer(200, existing(1, "41"))
    http.answer(409, status(409, "Conflict", "the object has been modified"))
    http.answer(200, existing(2, "43")).answer(200, scale("detector-1-4", "vision", 3, "44"))
    provider(log, {"service_name": "detector"})
    patches = [s.body for s in http.sent if s.method == "PATCH"]
    assert patches == [{"metadata": {"resourceVersion": "41"}, "spec": {"replicas": 2}},
                       {"metadata": {"resourceVersion": "43"}, "spec": {"replicas": 3}}]


def test_a_deployment_created_meanwhile_gets_a_replica_added(
    http: RecordingHttp, provider: KubernetesProvider
) -> None:
    http.answer(404, status(404, "NotFound", "none"))
    http.answer(409, status(409, "AlreadyExists", "deployments.apps already exists"))
    http.answer(200, existing(1, "5")).answer(200, scale("detector-1-4", "vision", 2, "6"))
    provider(log, {"service_name": "detector"})
    assert requests(http) == [("GET", V14), ("POST", DEPLOYMENTS), ("GET", V14),
                              ("PATCH", f"{V14}/scale")]  # fmt: skip
    assert http.sent[3].body["spec"] == {"replicas": 2}


# -- errors: clear, counted by reason ----------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "reason", "words"),
    [
        ([(403, status(403, "Forbidden", 'deployments.apps "detector-1-4" is forbidden: User '
                       '"system:serviceaccount:vision:default" cannot get resource'))],
         "forbidden", ["(403)", "cannot get resource", "deployments/scale"]),
        ([(401, status(401, "Unauthorized", "Unauthorized"))], "forbidden", ["(401)"]),
        ([(404, status(404, "NotFound", "none")),
          (404, status(404, "NotFound", 'namespaces "vision" not found'))],
         "not-found", ['namespaces "vision" not found', "does the namespace exist?"]),
        ([(404, status(404, "NotFound", "none")),
          (422, status(422, "Invalid", 'Deployment.apps "detector-1-4" is invalid'))],
         "invalid", ["(422)", "is invalid"]),
        ([(500, status(500, "InternalError", "etcdserver: request timed out"))],
         "api-error", ["(500)", "etcdserver: request timed out"]),
        ([(200, existing(3, "9"))], "at-capacity", ["3 replica(s)", "max_instance"]),
        ([(200, foreign_image(existing(1, "9"), "other/stage:9"))],
         "conflict", ["runs image 'other/stage:9'", "needs a new version name"]),
        ([(200, existing(1, "9", replace(SPEC, version="1-4")))],
         "conflict", ["runs version '1-4', not '1.4'", "more than case and punctuation"]),
        ([answer for n in range(3) for answer in (
            (200, existing(1, str(n))), (409, status(409, "Conflict", "modified")))],
         "conflict", ["kept changing", "HPA or KEDA"]),
    ],
    ids=["403", "401", "no-namespace", "422", "500", "at-capacity", "other-image",
         "other-version", "conflicts"],
)
def test_a_failed_start_names_its_reason_and_is_counted(
    http: RecordingHttp, provider: KubernetesProvider,
    answers: list[tuple[int, Any]], reason: str, words: list[str],
) -> None:  # fmt: skip
    for code, payload in answers:
        http.answer(code, payload)
    with pytest.raises(KubernetesDeployError) as caught:
        provider(log, {"service_name": "detector"})
    assert caught.value.reason == reason
    for word in words:
        assert word in str(caught.value)
    assert provider.failures == {reason: 1}
    assert len(http.sent) == len(answers), "every request was scripted, none more"


def test_an_api_that_does_not_answer_is_a_clear_counted_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real kubeconfig naming a port nobody serves: the real client, a real refusal.
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(KUBECONFIG.replace("SERVER", "https://127.0.0.1:1"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    provider = KubernetesProvider({"detector": SPEC})
    with pytest.raises(KubernetesDeployError) as caught:
        provider(log, {"service_name": "detector"})
    assert caught.value.reason == "api-unreachable"
    assert "the Kubernetes API at https://127.0.0.1:1 does not answer" in str(caught.value)
    assert "Connection refused" in str(caught.value)
    assert provider.failures == {"api-unreachable": 1}


def test_a_failed_stop_is_counted_and_raised_so_the_deployer_tries_again(
    http: RecordingHttp, provider: KubernetesProvider
) -> None:
    http.answer(200, existing(1, "1")).answer(200, scale("detector-1-4", "vision", 2, "2"))
    started = provider(log, {"service_name": "detector"})
    http.answer(403, status(403, "Forbidden", "cannot patch resource deployments/scale"))
    with pytest.raises(KubernetesDeployError, match="cannot patch"):
        started.stop()
    assert provider.failures == {"forbidden": 1}


def test_no_cluster_configured_says_where_it_looked(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent.yaml"))
    provider = KubernetesProvider({"detector": SPEC})
    with pytest.raises(KubernetesDeployError) as caught:
        provider(log, {"service_name": "detector"})
    assert caught.value.reason == "no-config"
    assert f"looked at {tmp_path / 'absent.yaml'}" in str(caught.value)
    assert provider.failures == {"no-config": 1}


def test_without_the_client_installed_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # import kubernetes -> ImportError
    with pytest.raises(DeployError, match=r"pip install 'fogverse\[kubernetes\]'"):
        kubernetes_client()
    provider = KubernetesProvider({"detector": SPEC})
    with pytest.raises(DeployError, match=r"pip install 'fogverse\[kubernetes\]'"):
        provider(log, {"service_name": "detector"})


def test_an_undeclared_service_names_the_declared_ones(provider: KubernetesProvider) -> None:
    with pytest.raises(DeployError, match="declared services: detector"):
        provider(log, {"service_name": "tracker"})


# -- a restarted master ------------------------------------------------------------------


async def test_a_restarted_master_adopts_as_many_instances_as_the_deployment_has_replicas(
    http: RecordingHttp,
) -> None:
    before = KubernetesProvider({"detector": SPEC}, master_id=MASTER, api=apps_api(http))
    http.answer(404, status(404, "NotFound", "none")).answer(201, existing(1, "1"))
    http.answer(200, existing(1, "1")).answer(200, scale("detector-1-4", "vision", 2, "2"))
    http.answer(200, existing(2, "2")).answer(200, scale("detector-1-4", "vision", 3, "3"))
    records = [before(log, {"service_name": "detector"}) for _ in range(3)]

    # Someone scaled it to 2 while no master ran; the new master adopts through the registry.
    after = KubernetesProvider({"detector": SPEC}, master_id=MASTER, api=apps_api(http))
    scripts = DeployScripts()
    scripts.set_deploy_functions(PROVIDER_KUBERNETES, after)
    http.always = (200, existing(2, "8"))
    adopted = [await scripts.adopt(PROVIDER_KUBERNETES, r.instance_id, r.info) for r in records]
    assert [a is not None for a in adopted] == [True, True, False]
    http.always = None

    http.answer(200, existing(2, "8")).answer(200, scale("detector-1-4", "vision", 1, "9"))
    assert adopted[0] is not None
    await scripts.stop(adopted[0])
    assert http.sent[-1].body == {"metadata": {"resourceVersion": "8"}, "spec": {"replicas": 1}}

    http.answer(404, status(404, "NotFound", "gone"))
    assert await scripts.adopt(PROVIDER_KUBERNETES, "detector-1-4-x", records[0].info) is None
    with pytest.raises(DeployError, match="not a KUBERNETES record"):
        await scripts.adopt(PROVIDER_KUBERNETES, "x", {"pid": 4})


# -- the deployer backs off ----------------------------------------------------------------


async def test_the_deployer_backs_off_a_service_the_cluster_forbids(http: RecordingHttp) -> None:
    http.always = (403, status(403, "Forbidden", "deployments.apps is forbidden"))
    provider = KubernetesProvider({"detector": SPEC}, master_id=MASTER, api=apps_api(http))
    scripts = DeployScripts()
    scripts.set_deploy_functions(PROVIDER_KUBERNETES, provider)
    now = [0.0]
    deployer = AutoDeployer(scripts, InstanceRegistry(),
                            DeployerSettings(deploy_delay=1.0, startup_grace=0.0),
                            clock=lambda: now[0])  # fmt: skip
    deployer.set_plan(StagePlan(("in", "out"), "detector", PROVIDER_KUBERNETES, min_instance=1))
    for second in range(16):
        now[0] = float(second)
        await deployer.tick(now[0])
        await deployer.idle()
    # Without backoff that is a try every second; with it, at 0, 1, 3, 7 and 15.
    assert provider.failures == {"forbidden": 5}
    held = [d for d in deployer.decisions if d.code == "start_backoff"]
    assert held and "is forbidden" in held[-1].reason
