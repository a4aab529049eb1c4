"""The built-in ``KUBERNETES`` provider: instances are replicas of a Deployment.

Each version of a service runs as a Deployment of its own, named from the service
and the version (``detector-1-4``), whose replica count is the number of instances
the Master started of that version. Starting an instance creates the Deployment
with one replica or adds one; stopping one takes one away, and the Deployment goes
when its last replica does. A rollout starts instances of the new version (a spec
carrying the new image) and stops old ones through this provider, so the Master's
health checks decide, not Kubernetes' own rolling update: a Deployment's image is
never changed in place.

Kubernetes, not the Master, picks which pod goes when replicas drop by one: the
Master's instance ids are slots in a Deployment's count, not pods. Every pod names
itself in its heartbeats (``FOGVERSE_INSTANCE_ID`` is its pod name).

Deployments are labelled with the service, version and master id, and outlive the
Master. A restarted Master adopts the instances it recorded while their Deployment
still has a replica for each: as many as the Deployment's replicas, no more.
Replica changes carry the Deployment's resourceVersion, so a change someone else
made meanwhile is read again, never overwritten. Failures carry a reason code
(:mod:`deploy_scripts.kubernetes_api`), are counted in :attr:`KubernetesProvider.failures`,
and the auto-deployer backs off a service whose starts keep failing.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from deploy_scripts.config import DeployConfig
from deploy_scripts.errors import DeployError, UnknownServiceError
from deploy_scripts.kubernetes_api import (
    AT_CAPACITY,
    CONFLICT,
    REQUEST_TIMEOUT,
    KubernetesDeployError,
    api_error,
    apps_api,
)
from deploy_scripts.kubernetes_manifest import CONTAINER_NAME, deployment_body
from deploy_scripts.kubernetes_spec import (
    KubernetesServiceSpec,
    deployment_name,
    kubernetes_version,
)
from deploy_scripts.result import DeployResult
from deploy_scripts.version import version_of
from fogverse.constants import (
    ENV_VERSION,
    INFO_VERSION,
    LABEL_MASTER_ID,
    LABEL_SERVICE,
    PROVIDER_KUBERNETES,
)

__all__ = ["KubernetesProvider"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_ATTEMPTS = 3
"""Reads and writes of one replica change before a Deployment that keeps changing
under us is reported as a conflict."""


class KubernetesProvider:
    """Runs declared services as Deployments; register it as ``"KUBERNETES"``.

    ``master_id`` tells this master's Deployments from others' in a shared
    namespace. ``api`` is a ``kubernetes.client.AppsV1Api`` (default: one from
    the kubeconfig or the pod's service account, made on first use so a provider
    can be built before the cluster answers; ``context`` picks a kubeconfig
    context).
    """

    def __init__(
        self,
        services: Mapping[str, KubernetesServiceSpec],
        base_env: Mapping[str, str] | None = None,
        *,
        master_id: str = "fogverse-master",
        api: Any = None,
        context: str | None = None,
    ) -> None:
        self._services = dict(services)
        self._base_env = dict(base_env or {})
        self.master_id = master_id
        self._api = api
        self._context = context
        self.failures: Counter[str] = Counter()
        """Failed calls by reason code (``forbidden``, ``api-unreachable``, ...)."""
        # A replica change is read-then-write: deploy threads must not interleave theirs
        # on one Deployment (one lock each; _guard keeps the books).
        self._guard = threading.Lock()
        self._changing: dict[tuple[str, str], threading.Lock] = {}
        self._claimed: dict[tuple[str, str], set[str]] = {}
        """Instance ids this master counts per (namespace, Deployment)."""

    # -- DeployScripts entry points ------------------------------------------------

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        """Start an instance of the version ``config`` asks for (the declared one if none)."""
        return self.start(self._spec_for(config), logger)

    def start(self, spec: KubernetesServiceSpec, logger: logging.Logger | None = None
              ) -> DeployResult:  # fmt: skip
        """Start one instance of the version ``spec`` carries: a replica more of its Deployment."""
        logger = logger or log
        name = deployment_name(spec)
        replicas = self._counted(f"start {spec.name}", functools.partial(self._add_replica, spec))
        instance_id = f"{name}-{uuid.uuid4().hex[:10]}"
        with self._guard:
            self._claimed.setdefault((spec.namespace, name), set()).add(instance_id)
        logger.info("started %s: Deployment %s/%s now has %d replica(s) of %s", instance_id,
                    spec.namespace, name, replicas, spec.image)
        return self._result(spec.namespace, name, instance_id, {
            "service": spec.name, INFO_VERSION: spec.version or spec.version_name,
            "image": spec.image})

    def adopt(self, instance_id: str, info: Mapping[str, Any] | None = None) -> DeployResult | None:
        """The instance back if its Deployment still has a replica for it, else None."""
        record = dict(info or {})
        try:
            namespace, name = str(record["namespace"]), str(record["deployment"])
        except KeyError:
            raise DeployError(f"instance {instance_id}: {info!r} is not a KUBERNETES record"
                              " (it needs namespace and deployment)") from None
        current = self._counted(f"read Deployment {namespace}/{name}",
                                functools.partial(self._read, namespace, name))
        with self._guard:
            claims = self._claimed.setdefault((namespace, name), set())
            replicas = (current.spec.replicas or 0) if current is not None else 0
            if instance_id not in claims and len(claims) >= replicas:
                return None
            claims.add(instance_id)
        return self._result(namespace, name, instance_id, record)

    @property
    def api(self) -> Any:
        """The ``AppsV1Api`` in use, made on first use."""
        return self._kube()

    def spec(self, service: str) -> KubernetesServiceSpec:
        """The declared spec of ``service``: ``replace`` its image and version for another."""
        try:
            return self._services[service]
        except KeyError:
            raise UnknownServiceError(service, PROVIDER_KUBERNETES, self._services) from None

    def replicas(self) -> dict[str, int]:
        """``namespace/deployment`` -> replicas, for every Deployment of this master."""
        selector = f"{LABEL_MASTER_ID}={self.master_id}"
        out: dict[str, int] = {}
        for namespace in sorted({s.namespace for s in self._services.values()}):
            found = self._counted(f"list Deployments in {namespace}",
                                  functools.partial(self._list, namespace, selector))
            for item in found:
                out[f"{namespace}/{item.metadata.name}"] = item.spec.replicas or 0
        return out

    def delete_all(self) -> None:
        """Delete every Deployment of this master (its pods go with them)."""
        for key in self.replicas():
            namespace, name = key.split("/", 1)
            self._counted(f"delete Deployment {key}",
                          functools.partial(self._delete, namespace, name, None))
        with self._guard:
            self._claimed.clear()

    # -- starting --------------------------------------------------------------------

    def _spec_for(self, config: DeployConfig) -> KubernetesServiceSpec:
        name = config.get("service_name")
        if name is None:
            raise DeployError("deploy config has no 'service_name'; KUBERNETES needs one")
        return kubernetes_version(self.spec(name), version_of(config))

    def _add_replica(self, spec: KubernetesServiceSpec) -> int:
        """Create the version's Deployment with one replica, or add one; the new count."""
        namespace, name = spec.namespace, deployment_name(spec)
        with self._changing_lock(namespace, name):
            for _ in range(_ATTEMPTS):
                current = self._read(namespace, name)
                if current is None:
                    if self._create(spec):
                        return 1
                    continue  # created meanwhile by someone else: add to it
                _check_same_version(current, spec, name)
                replicas = current.spec.replicas or 0
                if replicas >= spec.max_instance:
                    raise KubernetesDeployError(
                        AT_CAPACITY,
                        f"Deployment {namespace}/{name} already has {replicas} replica(s), the"
                        f" service {spec.name!r}'s max_instance; raise max_instance to allow more")
                if self._scale(current, replicas + 1):
                    return replicas + 1
        raise _kept_changing(namespace, name)

    # -- stopping --------------------------------------------------------------------

    def _stop(self, namespace: str, name: str, instance_id: str) -> int:
        """One replica fewer (the Deployment goes with its last); the replicas left."""
        return self._counted(f"stop {instance_id}", functools.partial(
            self._remove_replica, namespace, name, instance_id))

    def _remove_replica(self, namespace: str, name: str, instance_id: str) -> int:
        with self._changing_lock(namespace, name):
            for _ in range(_ATTEMPTS):
                current = self._read(namespace, name)
                if current is None:
                    self._unclaim(namespace, name, instance_id)
                    return 0  # already gone: a repeated stop is harmless
                replicas = current.spec.replicas or 0
                if replicas <= 1:
                    done = self._delete(namespace, name, current.metadata.resource_version)
                else:
                    done = self._scale(current, replicas - 1)
                if done:
                    self._unclaim(namespace, name, instance_id)
                    return max(replicas - 1, 0)
        raise _kept_changing(namespace, name)

    def _unclaim(self, namespace: str, name: str, instance_id: str) -> None:
        with self._guard:
            self._claimed.get((namespace, name), set()).discard(instance_id)

    def _changing_lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._changing.setdefault((namespace, name), threading.Lock())

    # -- calls -------------------------------------------------------------------------

    def _kube(self) -> Any:
        if self._api is None:
            self._api = apps_api(self._context)
        return self._api

    def _counted(self, doing: str, call: Callable[[], _T]) -> _T:
        """``call()``; a failure is logged and counted by its reason code."""
        try:
            return call()
        except KubernetesDeployError as exc:
            self.failures[exc.reason] += 1
            log.error("KUBERNETES: %s failed (%s): %s", doing, exc.reason, exc)
            raise

    def _read(self, namespace: str, name: str) -> Any:
        """The Deployment, or None when there is none."""
        try:
            return self._kube().read_namespaced_deployment(
                name, namespace, _request_timeout=REQUEST_TIMEOUT)
        except KubernetesDeployError:
            raise
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise api_error(exc, f"read Deployment {namespace}/{name}", self._api) from None

    def _list(self, namespace: str, selector: str) -> list[Any]:
        try:
            found = self._kube().list_namespaced_deployment(
                namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT)
        except KubernetesDeployError:
            raise
        except Exception as exc:
            raise api_error(exc, f"list Deployments in {namespace}", self._api) from None
        return list(found.items or [])

    def _write(self, doing: str, call: Callable[[], object]) -> bool:
        """Make a change; False on 409 (someone changed the object first: read it again)."""
        try:
            call()
        except KubernetesDeployError:
            raise
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                return False
            raise api_error(exc, doing, self._api) from None
        return True

    def _create(self, spec: KubernetesServiceSpec) -> bool:
        body = deployment_body(spec, self._base_env, self.master_id)
        return self._write(
            f"create Deployment {spec.namespace}/{body['metadata']['name']}",
            lambda: self._kube().create_namespaced_deployment(
                spec.namespace, body, _request_timeout=REQUEST_TIMEOUT))

    def _scale(self, current: Any, replicas: int) -> bool:
        meta = current.metadata
        # resourceVersion makes the API refuse (409) if the Deployment changed since read.
        body = {"metadata": {"resourceVersion": meta.resource_version},
                "spec": {"replicas": replicas}}
        return self._write(
            f"scale Deployment {meta.namespace}/{meta.name} to {replicas}",
            lambda: self._kube().patch_namespaced_deployment_scale(
                meta.name, meta.namespace, body, _request_timeout=REQUEST_TIMEOUT))

    def _delete(self, namespace: str, name: str, resource_version: str | None) -> bool:
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if resource_version is not None:
            body["preconditions"] = {"resourceVersion": resource_version}
        try:
            return self._write(f"delete Deployment {namespace}/{name}", lambda: (
                self._kube().delete_namespaced_deployment(
                    name, namespace, body=body, _request_timeout=REQUEST_TIMEOUT)))
        except KubernetesDeployError as exc:
            if exc.status == 404:
                return True  # gone already
            raise

    def _result(self, namespace: str, name: str, instance_id: str,
                about: Mapping[str, Any]) -> DeployResult:  # fmt: skip
        return DeployResult(
            instance_id=instance_id,
            stop=functools.partial(self._stop, namespace, name, instance_id),
            info={**about, "namespace": namespace, "deployment": name},
        )

def _check_same_version(current: Any, spec: KubernetesServiceSpec, name: str) -> None:
    """Refuse to add a replica to a Deployment of this name running another version."""
    containers = current.spec.template.spec.containers or []
    ours = next((c for c in containers if c.name == CONTAINER_NAME), None)
    env = {e.name: e.value for e in (ours.env or [])} if ours is not None else {}
    running = {"image": ours.image if ours is not None else None,
               "version": env.get(ENV_VERSION),
               "service": (current.metadata.labels or {}).get(LABEL_SERVICE)}
    wanted = {"image": spec.image, "version": spec.version or spec.version_name,
              "service": spec.name}  # fmt: skip
    for what, value in wanted.items():
        if running[what] != value:
            hint = ("a new image needs a new version name" if what == "image" else
                    "names must differ in more than case and punctuation")
            raise KubernetesDeployError(
                CONFLICT,
                f"Deployment {spec.namespace}/{name} runs {what} {running[what]!r}, not"
                f" {value!r}; {hint} (each version of a service gets its own Deployment)",
            )


def _kept_changing(namespace: str, name: str) -> KubernetesDeployError:
    return KubernetesDeployError(
        CONFLICT, f"Deployment {namespace}/{name} kept changing while its replicas were being"
        f" set ({_ATTEMPTS} tries); something else scales it (an HPA or KEDA?)", 409)
