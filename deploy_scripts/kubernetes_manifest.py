"""The Kubernetes objects a KUBERNETES service becomes, as plain dicts (JSON bodies).

Plain dicts rather than the client's model classes: they are what goes over the
wire, what ``fogverse k8s`` prints for ``kubectl apply``, and what tests compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy_scripts.kubernetes_spec import (
    CONTROL_KEY_SECRET_KEY,
    KubernetesServiceSpec,
    deployment_name,
)
from fogverse.constants import (
    ENV_CONTROL_KEY,
    ENV_INSTANCE_ID,
    ENV_NODE_ID,
    ENV_SERVICE_NAME,
    ENV_VERSION,
    LABEL_MASTER_ID,
    LABEL_SERVICE,
    LABEL_VERSION,
)

__all__ = ["CONTAINER_NAME", "deployment_body", "object_labels", "selector_labels"]

CONTAINER_NAME = "stage"

_MANAGED_BY = "fogverse"


def selector_labels(spec: KubernetesServiceSpec, master_id: str) -> dict[str, str]:
    """The labels that pick one version's pods: fixed for a Deployment's life."""
    return {LABEL_SERVICE: spec.name, LABEL_VERSION: spec.version_name, LABEL_MASTER_ID: master_id}


def object_labels(spec: KubernetesServiceSpec, master_id: str) -> dict[str, str]:
    """Every label on the Deployment and its pods: the user's, the well-known ones, ours."""
    return {**spec.labels, "app.kubernetes.io/name": spec.name,
            "app.kubernetes.io/version": spec.version_name,
            "app.kubernetes.io/managed-by": _MANAGED_BY,
            **selector_labels(spec, master_id)}  # fmt: skip


def deployment_body(
    spec: KubernetesServiceSpec,
    base_env: Mapping[str, str],
    master_id: str,
    replicas: int = 1,
) -> dict[str, Any]:
    """The Deployment running ``spec``'s version (apps/v1)."""
    labels = object_labels(spec, master_id)
    pod: dict[str, Any] = {
        "terminationGracePeriodSeconds": spec.stop_timeout,
        "containers": [_container(spec, base_env)],
    }
    if spec.service_account:
        pod["serviceAccountName"] = spec.service_account
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(spec), "namespace": spec.namespace,
                     "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(spec, master_id)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }


def _container(spec: KubernetesServiceSpec, base_env: Mapping[str, str]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": spec.image}
    if spec.command:
        container["command"] = list(spec.command)
    container["env"] = _env(spec, base_env)
    if spec.resources:
        container["resources"] = {kind: dict(table) for kind, table in spec.resources.items()}
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    return container


def _env(spec: KubernetesServiceSpec, base_env: Mapping[str, str]) -> list[dict[str, Any]]:
    plain = {**base_env, **spec.env, ENV_SERVICE_NAME: spec.name,
             ENV_VERSION: spec.version or spec.version_name}
    env: list[dict[str, Any]] = []
    if spec.control_key_secret:
        # The key stays in the Secret: anyone who may read Deployments would see it here.
        plain.pop(ENV_CONTROL_KEY, None)
        env.append({"name": ENV_CONTROL_KEY, "valueFrom": {"secretKeyRef": {
            "name": spec.control_key_secret, "key": CONTROL_KEY_SECRET_KEY}}})
    env[:0] = [{"name": name, "value": value} for name, value in plain.items()]
    # One pod template serves every replica, so each pod names itself: its heartbeats
    # carry the pod's name, and its node is the one Kubernetes put it on.
    env.append({"name": ENV_INSTANCE_ID, "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.name"}}})
    env.append({"name": ENV_NODE_ID, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    return env
