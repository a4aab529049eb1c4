"""The KUBERNETES provider against a live cluster: runs only where KUBECONFIG names one.

No cluster can run on the machines this project is built on, so here it skips and
says why. With one: ``KUBECONFIG=~/.kube/config pytest -m kubernetes``; the image
(``FOGVERSE_K8S_TEST_IMAGE``, default ``busybox:1.36``) must be pullable by the
cluster, and the namespace (``FOGVERSE_K8S_TEST_NAMESPACE``, default ``default``)
must exist. Everything the test creates carries a fresh master id and is deleted.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from deploy_scripts.kubernetes import KubernetesProvider
from deploy_scripts.kubernetes_api import API_UNREACHABLE, NO_CONFIG, KubernetesDeployError
from deploy_scripts.kubernetes_spec import KubernetesServiceSpec
from tests.polling import wait_until_sync

pytestmark = pytest.mark.kubernetes

log = logging.getLogger(__name__)

IMAGE = os.environ.get("FOGVERSE_K8S_TEST_IMAGE", "busybox:1.36")
NAMESPACE = os.environ.get("FOGVERSE_K8S_TEST_NAMESPACE", "default")
SLEEPER = ("sh", "-c", "sleep 3600")


@pytest.fixture
def provider() -> Iterator[KubernetesProvider]:
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("no Kubernetes cluster: KUBECONFIG is not set (this live test needs one; "
                    "the request bodies are checked without a cluster in test_deploy_kubernetes)")
    spec = KubernetesServiceSpec("fogverse-live", IMAGE, version="a", namespace=NAMESPACE,
                                 command=SLEEPER, stop_timeout=1, max_instance=2)  # fmt: skip
    made = KubernetesProvider({spec.name: spec}, master_id=f"live-{uuid.uuid4().hex[:8]}")
    try:
        made.replicas()
    except KubernetesDeployError as exc:
        if exc.reason in (NO_CONFIG, API_UNREACHABLE):
            pytest.skip(f"KUBECONFIG={os.environ['KUBECONFIG']} names no reachable cluster: {exc}")
        raise
    yield made
    made.delete_all()


def test_instances_are_replicas_of_one_deployment_per_version(
    provider: KubernetesProvider,
) -> None:
    a1 = provider(log, {"service_name": "fogverse-live"})
    a2 = provider(log, {"service_name": "fogverse-live"})
    key = f"{NAMESPACE}/fogverse-live-a"
    assert provider.replicas() == {key: 2}
    api = provider.api
    wait_until_sync(lambda: (api.read_namespaced_deployment(
        "fogverse-live-a", NAMESPACE).status.ready_replicas or 0) == 2, timeout=180,
        what="both pods of version a ready")  # fmt: skip

    b1 = provider.start(replace(provider.spec("fogverse-live"), version="b"), log)
    assert provider.replicas() == {key: 2, f"{NAMESPACE}/fogverse-live-b": 1}

    a1.stop()
    assert provider.replicas()[key] == 1
    a2.stop()
    b1.stop()
    assert provider.replicas() == {}, "the last stop of a version deletes its Deployment"
