"""Reaching the Kubernetes API: the client, its config, and its errors as reason codes.

Every failure the KUBERNETES provider reports is a :class:`KubernetesDeployError`
whose ``reason`` is one of the codes below, so failures can be counted and a
reader can tell "no cluster" from "not allowed" from "someone else changed it".
"""

from __future__ import annotations

import json
import os
from typing import Any

from deploy_scripts.errors import DeployError

__all__ = [
    "API_ERROR",
    "API_UNREACHABLE",
    "AT_CAPACITY",
    "CONFLICT",
    "FORBIDDEN",
    "INVALID",
    "NOT_FOUND",
    "NO_CONFIG",
    "REQUEST_TIMEOUT",
    "KubernetesDeployError",
    "api_error",
    "apps_api",
    "kubernetes_client",
]

NO_CONFIG = "no-config"
"""Neither a kubeconfig nor an in-cluster service account."""
API_UNREACHABLE = "api-unreachable"
FORBIDDEN = "forbidden"
"""401 or 403: the credentials are refused, or lack a right (RBAC)."""
NOT_FOUND = "not-found"
"""404 where something must exist: the namespace, mostly."""
CONFLICT = "conflict"
"""409, or a Deployment of ours whose image is not the version's."""
INVALID = "invalid"
"""422: the API refused the object (a bad name, label or quantity)."""
AT_CAPACITY = "at-capacity"
API_ERROR = "api-error"
"""Any other answer: 5xx, 429 after the client's own retries."""

REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for each API call: an unreachable API fails in seconds."""

_STATUS_REASONS = {401: FORBIDDEN, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT, 422: INVALID}
_INSTALL = "pip install 'fogverse[kubernetes]'"
_RBAC = ("the Master's account needs get, list, create and delete on deployments and patch on"
         " deployments/scale")


class KubernetesDeployError(DeployError):
    """A Kubernetes call failed; ``reason`` is a stable code, ``status`` the HTTP status."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(message)


def kubernetes_client() -> Any:
    """The ``kubernetes`` package, or a DeployError saying how to install it."""
    try:
        import kubernetes
    except ImportError:
        raise DeployError(f"the KUBERNETES provider needs the kubernetes client: {_INSTALL}"
                          ) from None
    return kubernetes


def apps_api(context: str | None = None) -> Any:
    """An ``AppsV1Api`` for the cluster this process is configured for.

    Inside a pod (``KUBERNETES_SERVICE_HOST`` set, no ``context`` asked) the pod's
    service account; otherwise the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``)
    and its current context, or ``context``. The configuration is this client's
    own, not the library's global default.
    """
    k8s = kubernetes_client()
    conf = k8s.client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
            k8s.config.load_incluster_config(client_configuration=conf)
        else:
            # The library reads KUBECONFIG once, when imported; read it now instead.
            k8s.config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                        context=context, client_configuration=conf)
    except (k8s.config.ConfigException, OSError) as exc:
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise KubernetesDeployError(
            NO_CONFIG,
            f"no Kubernetes cluster configured ({exc}); point KUBECONFIG at a kubeconfig"
            f" (looked at {where}) or run the Master in a pod with a service account",
        ) from None
    return k8s.client.AppsV1Api(k8s.client.ApiClient(configuration=conf))


def api_error(exc: Exception, doing: str, api: Any) -> KubernetesDeployError:
    """The error to raise for ``exc``, raised by the client while ``doing`` something."""
    host = getattr(getattr(getattr(api, "api_client", None), "configuration", None), "host", "?")
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or status == 0:
        return KubernetesDeployError(
            API_UNREACHABLE,
            f"the Kubernetes API at {host} does not answer while trying to {doing}:"
            f" {_first_line(exc)}; check the cluster and KUBECONFIG",
        )
    reason = _STATUS_REASONS.get(status, API_ERROR)
    said = _api_message(exc)
    hint = {FORBIDDEN: f"; {_RBAC}", NOT_FOUND: "; does the namespace exist?"}.get(reason, "")
    return KubernetesDeployError(
        reason, f"the Kubernetes API refused to {doing} ({status}): {said}{hint}", status
    )


def _api_message(exc: Exception) -> str:
    """The API server's own words: the ``message`` of the Status object it answered with."""
    body = getattr(exc, "body", None)
    try:
        status = json.loads(body) if body else {}
    except ValueError:
        status = {}
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return str(getattr(exc, "reason", None) or _first_line(exc))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
