"""The HTTP boundary under the kubernetes client, recorded: no API server runs here.

:class:`RecordingHttp` takes the place of the urllib3 pool manager inside a real
``kubernetes.client.ApiClient``. Everything above it is the real client: its
models, serialisation, Content-Type choice, and the ``ApiException`` it raises
for an error status. Each request is recorded as it would go over the wire
(method, path, query, headers, JSON body); answers are scripted per test, in
order, shaped like an API server's (a Deployment, a Scale, a ``Status``).
"""

from __future__ import annotations

import copy
import json
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import urllib3

HOST = "https://k8s.test:6443"

_REASONS = {200: "OK", 201: "Created", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity",
            500: "Internal Server Error"}  # fmt: skip


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class RecordingHttp:
    """Records requests and answers each with the next scripted answer (or ``always``)."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._answers: deque[tuple[int, Any] | BaseException] = deque()
        self.always: tuple[int, Any] | BaseException | None = None

    def answer(self, status: int, payload: Any = None) -> RecordingHttp:
        self._answers.append((status, payload))
        return self

    def fail(self, exc: BaseException) -> RecordingHttp:
        self._answers.append(exc)
        return self

    @property
    def unanswered(self) -> int:
        return len(self._answers)

    # urllib3.PoolManager's interface, as the client's RESTClientObject uses it.
    def request(self, method: str, url: str, body: Any = None, headers: Any = None,
                **_: Any) -> urllib3.HTTPResponse:  # fmt: skip
        parts = urlsplit(url)
        self.sent.append(Sent(method, parts.path, dict(parse_qsl(parts.query)),
                              dict(headers or {}), json.loads(body) if body else None))
        if self._answers:
            answer = self._answers.popleft()
        elif self.always is not None:
            answer = self.always
        else:
            raise AssertionError(f"unexpected request {method} {parts.path}")
        if isinstance(answer, BaseException):
            raise answer
        status, payload = answer
        return urllib3.HTTPResponse(
            body=json.dumps(payload if payload is not None else {}).encode(), status=status,
            reason=_REASONS.get(status, ""), headers={"Content-Type": "application/json"},
            preload_content=True,
        )

    def clear(self) -> None:
        pass


def apps_api(http: RecordingHttp) -> Any:
    """A real ``AppsV1Api`` whose requests go to ``http``."""
    from kubernetes import client

    conf = client.Configuration(host=HOST)
    api_client = client.ApiClient(configuration=conf)
    api_client.rest_client.pool_manager = http
    return client.AppsV1Api(api_client)


def live_deployment(body: dict[str, Any], *, replicas: int, resource_version: str
                    ) -> dict[str, Any]:  # fmt: skip
    """What the API server returns for a Deployment created from ``body``."""
    obj = copy.deepcopy(body)
    obj["metadata"].update(resourceVersion=resource_version, uid="5b1c0e2a-0000-4000-8000-1",
                           generation=1, creationTimestamp="2026-12-02T08:00:00Z")
    obj["spec"]["replicas"] = replicas
    obj["spec"].setdefault("strategy", {"type": "RollingUpdate"})
    obj["status"] = {"replicas": replicas, "readyReplicas": replicas}
    return obj


def scale(name: str, namespace: str, replicas: int, resource_version: str) -> dict[str, Any]:
    """The Scale subresource as the API server answers a scale patch."""
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "resourceVersion": resource_version},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas - 1}}  # fmt: skip


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A failure ``Status``, the body of every API error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


def deployment_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "DeploymentList", "apiVersion": "apps/v1",
            "metadata": {"resourceVersion": "99"}, "items": list(items)}  # fmt: skip
