"""The stage instances an agent runs: child processes it starts, watches and stops.

What runs comes only from an :class:`~fogverse.wire.nodes.InstanceStart` order,
which the master builds from its own config (module or command, settings): the
agent never takes a command from anyone else. Each child runs in its own process
group, logs to a file of its own, and is sent SIGTERM if the agent dies, so a
lost agent never leaves instances the master would then run twice. A lost
*master* changes nothing here: the instances keep running.

Children are started and stopped through :mod:`fogverse.processes`, which says
why every fork happens on one long-lived thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fogverse import processes
from fogverse.child_env import inherited
from fogverse.constants import ENV_INSTANCE_ID, ENV_NODE_ID, ENV_SERVICE_NAME
from fogverse.wire.nodes import InstanceEvent, InstanceStart

__all__ = ["InstanceSupervisor"]


@dataclass
class _Child:
    service: str
    proc: subprocess.Popen[bytes]
    log: Path


class InstanceSupervisor:
    """Starts, reaps and stops the instances of one node."""

    def __init__(
        self,
        node_id: str,
        base_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        death_signal: int = signal.SIGTERM,
        parent_env: Mapping[str, str] | None = None,
    ) -> None:
        self.node_id = node_id
        self._parent_env = dict(os.environ if parent_env is None else parent_env)
        self._base_env = dict(base_env or {})
        self._log_dir = log_dir
        self._death_signal = int(death_signal)
        self._children: dict[str, _Child] = {}

    @property
    def running(self) -> tuple[str, ...]:
        return tuple(self._children)

    def start(self, order: InstanceStart) -> InstanceEvent:
        """Start the ordered instance; an event saying ``started`` or ``refused`` (and why)."""
        if order.instance_id in self._children:
            return self._event(order.instance_id, "refused", order.service_name,
                               detail="an instance with this id already runs here")
        argv = self._argv(order)
        log_path = self._logs() / f"{order.instance_id}.log"
        # The agent's own environment (its profile, its operator's secrets) stays
        # with it: a child gets the allow-list, then what the master's order says.
        env = {**inherited(self._parent_env), **self._base_env, **order.env,
               ENV_INSTANCE_ID: order.instance_id, ENV_SERVICE_NAME: order.service_name,
               ENV_NODE_ID: self.node_id}
        try:
            with open(log_path, "ab") as log:
                proc = processes.spawn(
                    argv, output=log, env=env, cwd=order.cwd, die_with_parent=self._death_signal
                )
        except OSError as exc:
            return self._event(order.instance_id, "refused", order.service_name,
                               detail=f"cannot start {argv[-1]!r}: {exc}")
        self._children[order.instance_id] = _Child(order.service_name, proc, log_path)
        return self._event(order.instance_id, "started", order.service_name, pid=proc.pid,
                           detail=str(log_path))

    def _argv(self, order: InstanceStart) -> list[str]:
        command = [sys.executable, "-m", order.module] if order.module else list(order.command)
        return [*command, *order.args]

    def _logs(self) -> Path:
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix=f"fogverse-agent-{self.node_id}-"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self._log_dir

    def reap(self) -> list[InstanceEvent]:
        """Events for instances that exited by themselves since the last call."""
        events = []
        for instance_id, child in list(self._children.items()):
            if processes.has_exited(child.proc):
                del self._children[instance_id]
                code = processes.terminate(child.proc, 0.0)  # whatever it left behind
                events.append(self._event(instance_id, "exited", child.service, pid=child.proc.pid,
                                          exit_code=code, detail=str(child.log)))
        return events

    def stop(self, instance_id: str, grace: float, hard: bool = False) -> InstanceEvent | None:
        """SIGTERM the instance's group, SIGKILL after ``grace`` (at once when ``hard``);
        None if it was not running.

        Blocking for up to ``grace`` seconds: run it in a thread.
        """
        child = self._children.pop(instance_id, None)
        if child is None:
            return None
        proc = child.proc
        if hard:
            processes.signal_group(proc.pid, signal.SIGKILL)
        code = processes.terminate(proc, 0.0 if hard else grace)
        return self._event(instance_id, "stopped", child.service, pid=proc.pid, exit_code=code)

    def _event(self, instance_id: str, state: str, service: str, *, pid: int | None = None,
               exit_code: int | None = None, detail: str = "") -> InstanceEvent:
        return InstanceEvent(self.node_id, instance_id, state, service, pid, exit_code, detail)

