"""The built-in ``DOCKER`` provider: each instance is a container on a Docker engine.

Containers are labelled with their service, instance id and the master's id, so a
restarted master finds the ones it started and adopts them instead of starting
more. Unlike LOCAL children they outlive the master by design: the data plane keeps
running while the control plane restarts. Start failures carry a reason code
(:class:`DockerDeployError`) and are counted in :attr:`DockerProvider.failures`;
the auto-deployer backs off a service whose starts keep failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from deploy_scripts.config import DeployConfig
from deploy_scripts.docker_spec import DockerServiceSpec, docker_version
from deploy_scripts.errors import DeployError, UnknownServiceError
from deploy_scripts.result import DeployResult
from deploy_scripts.version import DECLARED_VERSION, version_of
from fogverse.constants import (
    ENV_INSTANCE_ID,
    ENV_SERVICE_NAME,
    INFO_VERSION,
    LABEL_INSTANCE_ID,
    LABEL_MASTER_ID,
    LABEL_SERVICE,
    LABEL_VERSION,
    PROVIDER_DOCKER,
)

__all__ = ["DockerDeployError", "DockerProvider"]

DAEMON_UNREACHABLE = "daemon-unreachable"
IMAGE_MISSING = "image-missing"
EXITED_AT_ONCE = "exited-at-once"
START_FAILED = "start-failed"
AT_CAPACITY = "at-capacity"

_LIVE_STATES = frozenset({"created", "running", "restarting"})
_LOG_TAIL_LINES = 20


class DockerDeployError(DeployError):
    """A container could not be started; ``reason`` is a stable code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _docker_sdk() -> Any:
    try:
        import docker
    except ImportError:
        raise DeployError(
            "the DOCKER provider needs the docker SDK: pip install 'fogverse[docker]'"
        ) from None
    return docker


def _engine_errors() -> tuple[type[Exception], ...]:
    """What the SDK raises when the engine is not there: its own errors, or requests' when
    a client made earlier finds the socket gone."""
    import requests

    return (_docker_sdk().errors.DockerException, requests.exceptions.ConnectionError)


def _extra_env(config: DeployConfig) -> dict[str, str]:
    raw = (config.get("extra_configs") or {}).get("env", {})
    if not isinstance(raw, Mapping):
        raise DeployError(f"extra_configs['env'] must be a mapping, got {type(raw).__name__}")
    return {str(key): str(value) for key, value in raw.items()}


class DockerProvider:
    """Runs declared services as containers; register it as ``"DOCKER"``.

    ``master_id`` tells this master's containers from others' on a shared engine.
    ``client`` is a ``docker.DockerClient`` (default: ``docker.from_env()``, which
    honours ``DOCKER_HOST``), created on first use so a provider can be built
    before the engine is up. A container still not running ``start_check``
    seconds after its start is reported as exiting at once, with its log's tail.
    ``stop_timeout`` is how long a container gets between SIGTERM and SIGKILL.
    """

    def __init__(
        self,
        services: Mapping[str, DockerServiceSpec],
        base_env: Mapping[str, str] | None = None,
        *,
        master_id: str = "fogverse-master",
        client: Any = None,
        start_check: float = 1.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._services = dict(services)
        self._base_env = dict(base_env or {})
        self.master_id = master_id
        self._client = client
        self._start_check = start_check
        self._stop_timeout = stop_timeout
        self.failures: Counter[str] = Counter()
        """Failed starts by reason code (``image-missing``, ``daemon-unreachable``, ...)."""
        # Capacity check and create must not interleave between deploy threads.
        self._guard = threading.Lock()

    # -- DeployScripts entry points ------------------------------------------------

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        spec = self._spec_for(config)
        instance_id = f"{spec.name}-{uuid.uuid4().hex[:10]}"
        try:
            container = self._start(spec, instance_id, config)
        except DockerDeployError as exc:
            self.failures[exc.reason] += 1
            logger.error("DOCKER start of %s failed (%s): %s", spec.name, exc.reason, exc)
            raise
        logger.info("started %s as container %s (%s)", instance_id, container.short_id,
                    spec.image)  # fmt: skip
        return self._result(container)

    def adopt(self, instance_id: str, info: Mapping[str, Any] | None = None) -> DeployResult | None:
        """The instance's container if it still runs here, else None (a dead one is removed)."""
        containers = self._list({LABEL_INSTANCE_ID: instance_id}, include_stopped=True)
        result = None
        for container in containers:
            if container.status in _LIVE_STATES and result is None:
                result = self._result(container)
            else:
                self._remove(container)
        return result

    def find_running(self) -> list[DeployResult]:
        """Every live container this master started, found by label."""
        return [self._result(c) for c in self._list({}) if c.status in _LIVE_STATES]

    def running(self) -> list[str]:
        """Ids of this master's instances whose container is live."""
        return sorted(r.instance_id for r in self.find_running())

    async def stop_all(self) -> None:
        """Stop and remove every container of this master, concurrently."""
        found = await asyncio.to_thread(self._list, {}, include_stopped=True)
        await asyncio.gather(*(asyncio.to_thread(self._stop_container, c.id) for c in found))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- starting ------------------------------------------------------------------

    def _spec_for(self, config: DeployConfig) -> DockerServiceSpec:
        name = config.get("service_name")
        if name is None:
            raise DeployError("deploy config has no 'service_name'; DOCKER needs one")
        try:
            spec = self._services[name]
        except KeyError:
            raise UnknownServiceError(name, PROVIDER_DOCKER, self._services) from None
        return docker_version(spec, version_of(config))

    def _labels(self, spec: DockerServiceSpec, instance_id: str) -> dict[str, str]:
        return {**spec.labels, LABEL_SERVICE: spec.name, LABEL_INSTANCE_ID: instance_id,
                LABEL_MASTER_ID: self.master_id}  # fmt: skip

    def _start(self, spec: DockerServiceSpec, instance_id: str, config: DeployConfig) -> Any:
        docker = _docker_sdk()
        env = {**self._base_env, **spec.env, ENV_INSTANCE_ID: instance_id,
               ENV_SERVICE_NAME: spec.name, **_extra_env(config)}  # fmt: skip
        client = self._docker()
        try:
            client.images.get(spec.image)
        except docker.errors.ImageNotFound:
            raise DockerDeployError(
                IMAGE_MISSING,
                f"image {spec.image!r} for service {spec.name!r} is not on the Docker engine;"
                " build it (python -m deploy_scripts.docker_images stage) or docker pull it",
            ) from None
        except _engine_errors() as exc:
            raise self._unreachable(exc) from None
        with self._guard:
            self._check_capacity(spec)
            container = self._create_and_start(client, spec, instance_id, env)
        self._check_still_running(spec, container)
        return container

    def _create_and_start(
        self, client: Any, spec: DockerServiceSpec, instance_id: str, env: dict[str, str]
    ) -> Any:
        docker = _docker_sdk()
        try:
            container = client.containers.create(
                spec.image, list(spec.command) if spec.command else None, name=instance_id,
                environment=env, labels=self._labels(spec, instance_id),
                restart_policy=spec.restart_policy(), **spec.network_options(), **spec.limits(),
            )  # fmt: skip
        except docker.errors.APIError as exc:
            raise DockerDeployError(
                START_FAILED, f"cannot create a container for {spec.name!r}: {exc.explanation}"
            ) from None
        except _engine_errors() as exc:
            raise self._unreachable(exc) from None
        try:
            container.start()
        except docker.errors.APIError as exc:
            self._remove(container)
            raise DockerDeployError(
                START_FAILED, f"cannot start the container for {spec.name!r}: {exc.explanation}"
            ) from None
        return container

    def _check_capacity(self, spec: DockerServiceSpec) -> None:
        # The cap is per version: a rollout runs the new beside the old for a while.
        version = spec.labels.get(LABEL_VERSION, DECLARED_VERSION)
        live = [c for c in self._list({LABEL_SERVICE: spec.name}) if c.status in _LIVE_STATES
                and c.labels.get(LABEL_VERSION, DECLARED_VERSION) == version]
        if len(live) >= spec.max_instance:
            raise DockerDeployError(
                AT_CAPACITY,
                f"service {spec.name!r} already runs {len(live)} container(s) of version"
                f" {version!r}, its max_instance;"
                " raise max_instance to allow more",
            )

    def _check_still_running(self, spec: DockerServiceSpec, container: Any) -> None:
        """Catch the container that dies at once (bad command, missing module, crash)."""
        deadline = time.monotonic() + self._start_check
        while True:
            container.reload()
            restarts = int(container.attrs.get("RestartCount", 0))
            if container.status not in ("created", "running") or restarts > 0:
                break
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)
        code = container.attrs.get("State", {}).get("ExitCode")
        tail = container.logs(tail=_LOG_TAIL_LINES).decode("utf-8", "replace").strip()
        self._remove(container)
        raise DockerDeployError(
            EXITED_AT_ONCE,
            f"container for {spec.name!r} ({spec.image}) exited at once with code {code};"
            f" its last output:\n{tail or '(none)'}",
        )

    def _unreachable(self, exc: Exception) -> DockerDeployError:
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        return DockerDeployError(
            DAEMON_UNREACHABLE,
            f"the Docker engine at {where} does not answer ({exc}); start it"
            " (scripts/docker-env.sh) or point DOCKER_HOST at one",
        )

    # -- finding and stopping -------------------------------------------------------

    def _docker(self) -> Any:
        if self._client is None:
            docker = _docker_sdk()
            try:
                self._client = docker.from_env()
            except docker.errors.DockerException as exc:
                raise self._unreachable(exc) from None
        return self._client

    def _list(self, labels: Mapping[str, str], *, include_stopped: bool = False) -> list[Any]:
        wanted = {LABEL_MASTER_ID: self.master_id, **labels}
        filters = {"label": [f"{key}={value}" for key, value in wanted.items()]}
        try:
            found: list[Any] = self._docker().containers.list(all=include_stopped,
                                                               filters=filters)
        except _engine_errors() as exc:
            raise self._unreachable(exc) from None
        return found

    def _result(self, container: Any) -> DeployResult:
        labels = dict(container.labels)
        return DeployResult(
            instance_id=labels[LABEL_INSTANCE_ID],
            stop=functools.partial(self._stop_container, container.id),
            info={"container_id": container.id, "labels": labels,
                  "service": labels.get(LABEL_SERVICE), "image": container.attrs.get(
                      "Config", {}).get("Image"),
                  INFO_VERSION: labels.get(LABEL_VERSION, DECLARED_VERSION)},
        )  # fmt: skip

    def _stop_container(self, container_id: str) -> int | None:
        """Stop then remove; the exit code, or None if the container was already gone."""
        docker = _docker_sdk()
        try:
            container = self._docker().containers.get(container_id)
            container.stop(timeout=math.ceil(self._stop_timeout))  # whole seconds only
            code = container.wait().get("StatusCode")
        except docker.errors.NotFound:
            return None  # already gone: a repeated stop is harmless
        self._remove(container)
        return int(code) if code is not None else None

    def _remove(self, container: Any) -> None:
        docker = _docker_sdk()
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)

