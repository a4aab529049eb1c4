"""The built-in ``LOCAL`` provider: each instance is a child process on this host."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy_scripts.config import DeployConfig, ServiceSpec
from deploy_scripts.errors import DeployError, UnknownServiceError
from deploy_scripts.local_env import INHERITED_ENV, child_env, declared_env
from deploy_scripts.result import DeployResult
from fogverse import processes
from fogverse.constants import PROVIDER_LOCAL

__all__ = ["LOCAL", "LocalProvider"]

LOCAL = PROVIDER_LOCAL


@dataclass
class _Instance:
    instance_id: str
    service: str
    proc: subprocess.Popen[bytes]
    log: Path


def _extra_args(config: DeployConfig) -> list[str]:
    raw = (config.get("extra_configs") or {}).get("args", [])
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise DeployError(f"extra_configs['args'] must be a list, got {type(raw).__name__}")
    return [str(arg) for arg in raw]


def _check_executable(argv: list[str], cwd: str | None) -> None:
    program = argv[0]
    if os.sep in program:
        found = os.access(Path(cwd or ".") / program, os.X_OK)
    else:
        found = shutil.which(program) is not None
    if not found:
        raise DeployError(f"cannot start {program!r}: not found or not executable")


class LocalProvider:
    """Starts declared services as child processes; register it as ``"LOCAL"``.

    Every child runs in its own process group, logs to a file of its own (in
    ``log_dir``, or a fresh temporary directory, kept after exit for post
    mortems) and is sent ``death_signal`` if this process dies, so a crashed
    master leaves no stage running. A child sees only the ``inherit_env`` part of
    this process's environment, then ``base_env`` and what its service declares
    (see deploy_scripts.local_env). ``max_instance`` of each spec is a hard cap
    on how many instances of it run here at once. ``stop_timeout`` is how long
    a child gets between SIGTERM and SIGKILL.
    """

    def __init__(
        self,
        services: Mapping[str, ServiceSpec],
        base_env: Mapping[str, str] | None = None,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        stop_timeout: float = 10.0,
        death_signal: int = signal.SIGTERM,
        inherit_env: Iterable[str] = INHERITED_ENV,
    ) -> None:
        self._services = dict(services)
        self._base_env = dict(base_env or {})
        self._inherit_env = frozenset(inherit_env)
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._stop_timeout = stop_timeout
        self._death_signal = int(death_signal)
        self._instances: dict[str, _Instance] = {}
        # __call__ and the stop handles run in worker threads, possibly together.
        self._guard = threading.Lock()

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        spec = self._spec_for(config)
        instance_id = f"{spec.name}-{uuid.uuid4().hex[:10]}"
        argv = spec.argv(sys.executable) + _extra_args(config)
        _check_executable(argv, spec.cwd)
        env = self._child_env(spec, instance_id, config)
        with self._guard:
            self._reap_exited()
            self._check_capacity(spec)
            instance = self._start(spec, instance_id, argv, env)
            self._instances[instance_id] = instance
        logger.info("started %s (pid %d), log %s", instance_id, instance.proc.pid, instance.log)
        return DeployResult(
            instance_id=instance_id,
            stop=functools.partial(self._stop, instance_id),
            info={"pid": instance.proc.pid, "log": str(instance.log), "service": spec.name,
                  "argv": argv},
        )  # fmt: skip

    def running(self) -> list[str]:
        """Ids of the instances whose process is still alive."""
        with self._guard:
            alive = [i for i in self._instances.values() if not processes.has_exited(i.proc)]
        return [i.instance_id for i in alive]

    async def stop_all(self) -> None:
        """Stop every instance this provider started, concurrently."""
        with self._guard:
            ids = list(self._instances)
        await asyncio.gather(*(asyncio.to_thread(self._stop, i) for i in ids))

    def _spec_for(self, config: DeployConfig) -> ServiceSpec:
        name = config.get("service_name")
        if name is None:
            raise DeployError("deploy config has no 'service_name'; LOCAL needs one")
        try:
            return self._services[name]
        except KeyError:
            raise UnknownServiceError(name, LOCAL, self._services) from None

    def _child_env(
        self, spec: ServiceSpec, instance_id: str, config: DeployConfig
    ) -> dict[str, str]:
        return child_env(
            os.environ, inherit=self._inherit_env,
            layers=(self._base_env, spec.env, declared_env(config)),
            instance_id=instance_id, service=spec.name,
        )  # fmt: skip

    def _check_capacity(self, spec: ServiceSpec) -> None:
        alive = sum(1 for i in self._instances.values() if i.service == spec.name)
        if alive >= spec.max_instance:
            raise DeployError(
                f"service {spec.name!r} already runs {alive} instance(s), its max_instance;"
                " raise ServiceSpec.max_instance to allow more"
            )

    def _start(
        self, spec: ServiceSpec, instance_id: str, argv: list[str], env: dict[str, str]
    ) -> _Instance:
        log_path = self._log_directory() / f"{instance_id}.log"
        with open(log_path, "ab") as log:
            proc = processes.spawn(
                argv, env=env, cwd=spec.cwd, output=log, die_with_parent=self._death_signal
            )
        return _Instance(instance_id, spec.name, proc, log_path)

    def _log_directory(self) -> Path:
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="fogverse-local-"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self._log_dir

    def _reap_exited(self) -> None:
        # An instance that exited by itself no longer counts against max_instance;
        # its group is still cleaned up so nothing it started lingers.
        for instance_id, instance in list(self._instances.items()):
            if processes.has_exited(instance.proc):
                del self._instances[instance_id]
                processes.terminate(instance.proc, 0)

    def _stop(self, instance_id: str) -> Any:
        with self._guard:
            instance = self._instances.pop(instance_id, None)
        if instance is None:
            return None  # already stopped: a repeated stop is harmless
        return processes.terminate(instance.proc, self._stop_timeout)
