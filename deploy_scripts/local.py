"""The built-in ``LOCAL`` provider: each instance is a process group on this host."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deploy_scripts.config import DeployConfig, ServiceSpec
from deploy_scripts.errors import DeployError, UnknownServiceError
from deploy_scripts.local_env import INHERITED_ENV, child_env, declared_env
from deploy_scripts.local_instance import LocalInstance
from deploy_scripts.result import DeployResult
from deploy_scripts.version import versioned_spec
from fogverse import processes
from fogverse.constants import PROVIDER_LOCAL

__all__ = ["LOCAL", "LocalProvider"]

LOCAL = PROVIDER_LOCAL

_log = logging.getLogger(__name__)


def _extra_args(config: DeployConfig) -> list[str]:
    raw = (config.get("extra_configs") or {}).get("args", [])
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise DeployError(f"extra_configs['args'] must be a list, got {type(raw).__name__}")
    return [str(arg) for arg in raw]


def _alive(instance: LocalInstance) -> bool:
    return not instance.exited()


def _check_executable(argv: list[str], cwd: str | None) -> None:
    program = argv[0]
    if os.sep in program:
        found = os.access(Path(cwd or ".") / program, os.X_OK)
    else:
        found = shutil.which(program) is not None
    if not found:
        raise DeployError(f"cannot start {program!r}: not found or not executable")


class LocalProvider:
    """Starts declared services as processes of this host; register it as ``"LOCAL"``.

    Each instance leads its own session and process group and logs to a file of
    its own (in ``log_dir``, or a fresh temporary directory, kept after exit for
    post mortems). Instances outlive this process, SIGKILL included: the data plane
    keeps running while the Master is down, and a restarted Master takes them back
    with :meth:`adopt` from the ``info`` of their ``DeployResult`` (pid, process
    group, start time). A graceful stop (``stop_all``, or the registry's
    ``close``) still stops them.

    A child sees only the ``inherit_env`` part of this process's environment, then
    ``base_env`` and what its service declares (see deploy_scripts.local_env).
    ``max_instance`` of each spec is a hard cap on how many instances of it run
    here at once. ``stop_timeout`` is how long an instance gets between SIGTERM
    and SIGKILL.
    """

    def __init__(
        self,
        services: Mapping[str, ServiceSpec],
        base_env: Mapping[str, str] | None = None,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        stop_timeout: float = 10.0,
        inherit_env: Iterable[str] = INHERITED_ENV,
    ) -> None:
        self._services = dict(services)
        self._base_env = dict(base_env or {})
        self._inherit_env = frozenset(inherit_env)
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._stop_timeout = stop_timeout
        self._instances: dict[str, LocalInstance] = {}
        # __call__, adopt and the stop handles run in worker threads, possibly together.
        self._guard = threading.Lock()

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        spec = self._spec_for(config)
        instance_id = f"{spec.name}-{uuid.uuid4().hex[:10]}"
        argv = spec.argv(sys.executable) + _extra_args(config)
        _check_executable(argv, spec.cwd)
        env = self._child_env(spec, instance_id, config)
        with self._guard:
            self._forget_exited()
            self._check_capacity(spec)
            instance = self._start(spec, instance_id, argv, env)
            self._instances[instance_id] = instance
        logger.info("started %s (pid %d), log %s", instance_id, instance.pid, instance.log)
        return self._result(instance)

    def adopt(self, instance_id: str, info: Mapping[str, Any]) -> DeployResult | None:
        """Take back an instance an earlier Master started, from its ``DeployResult.info``.

        None when that process no longer runs, or its pid now names another
        process (the start time or process group differ). DeployError when
        ``info`` is not such a record. Adopting counts against ``max_instance``
        but is never refused for it: the instance runs either way.
        """
        found = LocalInstance.from_info(instance_id, info)
        with self._guard:
            known = self._instances.get(instance_id)
            if known is not None and not known.exited():
                return self._result(known)
            if found.exited():
                return None
            self._instances[instance_id] = found
        _log.info("adopted %s (pid %d), log %s", instance_id, found.pid, found.log)
        return self._result(found)

    def running(self) -> list[str]:
        """Ids of the instances whose process is still alive."""
        with self._guard:
            instances = list(self._instances.values())
        return [i.instance_id for i in instances if not i.exited()]

    async def stop_all(self) -> None:
        """Stop every instance this provider started or adopted, concurrently."""
        with self._guard:
            ids = list(self._instances)
        await asyncio.gather(*(asyncio.to_thread(self._stop, i) for i in ids))

    def _result(self, instance: LocalInstance) -> DeployResult:
        return DeployResult(
            instance_id=instance.instance_id,
            stop=functools.partial(self._stop, instance.instance_id),
            info=instance.info(),
            alive=functools.partial(_alive, instance),
        )

    def _spec_for(self, config: DeployConfig) -> ServiceSpec:
        name = config.get("service_name")
        if name is None:
            raise DeployError("deploy config has no 'service_name'; LOCAL needs one")
        try:
            spec = self._services[name]
        except KeyError:
            raise UnknownServiceError(name, LOCAL, self._services) from None
        return versioned_spec(spec, config)

    def _child_env(
        self, spec: ServiceSpec, instance_id: str, config: DeployConfig
    ) -> dict[str, str]:
        return child_env(
            os.environ, inherit=self._inherit_env,
            layers=(self._base_env, spec.env, declared_env(config)),
            instance_id=instance_id, service=spec.name,
        )  # fmt: skip

    def _check_capacity(self, spec: ServiceSpec) -> None:
        # The cap is per version: a rollout runs the new beside the old for a while.
        alive = sum(1 for i in self._instances.values()
                    if i.service == spec.name and i.version == spec.version)
        if alive >= spec.max_instance:
            raise DeployError(
                f"service {spec.name!r} already runs {alive} instance(s) of version"
                f" {spec.version!r}, its max_instance;"
                " raise ServiceSpec.max_instance to allow more"
            )

    def _start(
        self, spec: ServiceSpec, instance_id: str, argv: list[str], env: dict[str, str]
    ) -> LocalInstance:
        log_path = self._log_directory() / f"{instance_id}.log"
        with open(log_path, "ab") as log:
            proc = processes.spawn(argv, env=env, cwd=spec.cwd, output=log)
        return LocalInstance.started(instance_id, spec.name, proc, str(log_path), argv,
                                     spec.version)

    def _log_directory(self) -> Path:
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="fogverse-local-"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self._log_dir

    def _forget_exited(self) -> None:
        # An instance that exited by itself no longer counts against max_instance;
        # its group is still cleaned up so nothing it started lingers.
        for instance_id, instance in list(self._instances.items()):
            if instance.exited():
                del self._instances[instance_id]
                instance.stop(0)

    def _stop(self, instance_id: str) -> Any:
        with self._guard:
            instance = self._instances.pop(instance_id, None)
        if instance is None:
            return None  # already stopped: a repeated stop is harmless
        return instance.stop(self._stop_timeout)
