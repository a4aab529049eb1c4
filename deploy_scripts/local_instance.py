"""One LOCAL instance: a process group this Master started, or one it found again."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy_scripts.errors import DeployError
from deploy_scripts.version import DECLARED_VERSION, instance_version
from fogverse import processes
from fogverse.constants import INFO_VERSION
from fogverse.processes import ProcessIdentity

__all__ = ["LocalInstance"]


@dataclass
class LocalInstance:
    """What the provider holds per instance.

    ``proc`` is set only for a child of this process: waiting on it without
    reaping keeps its group id ours, the strongest guarantee. An adopted instance
    (started by an earlier Master) has only its ``identity`` and is checked
    against it before every signal.
    """

    instance_id: str
    service: str
    identity: ProcessIdentity
    log: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    version: str = DECLARED_VERSION

    @classmethod
    def started(
        cls, instance_id: str, service: str, proc: subprocess.Popen[bytes], log: str,
        argv: list[str], version: str = DECLARED_VERSION,
    ) -> LocalInstance:  # fmt: skip
        try:
            identity = ProcessIdentity.of(proc.pid)  # an unreaped zombie still answers
        except ProcessLookupError:
            processes.terminate(proc, 0)
            raise DeployError(f"{instance_id} exited at once; see its log {log}") from None
        return cls(instance_id, service, identity, log, argv, proc, version)

    @classmethod
    def from_info(cls, instance_id: str, info: Mapping[str, Any]) -> LocalInstance:
        """An instance from a record :meth:`info` made; DeployError naming a bad field."""
        try:
            identity = ProcessIdentity.from_info(info)
        except ValueError as exc:
            raise DeployError(f"cannot adopt {instance_id}: {exc}") from None
        service, log, argv = info.get("service"), info.get("log", ""), info.get("argv", [])
        if not isinstance(service, str) or not service:
            raise DeployError(f"cannot adopt {instance_id}: 'service' must be a name,"
                              f" got {service!r}")
        return cls(instance_id, service, identity, str(log), [str(a) for a in argv],
                   version=instance_version(info))

    def info(self) -> dict[str, Any]:
        """What finds this instance again after a restart (plain, msgpack-safe values)."""
        return {**self.identity.to_info(), "service": self.service, "log": self.log,
                "argv": list(self.argv), INFO_VERSION: self.version}

    @property
    def pid(self) -> int:
        return self.identity.pid

    def exited(self) -> bool:
        if self.proc is not None:
            return processes.has_exited(self.proc)
        return self.identity.find() is None

    def stop(self, grace: float) -> int | None:
        """Stop the whole group; the exit status when it was our child."""
        if self.proc is not None:
            return processes.terminate(self.proc, grace)
        self.identity.stop(grace)
        return None
