"""Finding a process again from a record, in another process, after a restart.

A pid alone is not an identity: once a process ends its pid is handed out again.
A ``ProcessIdentity`` adds the process group and the start time, and a process
counts as the one recorded only if all three still match. The start time is
compared with a tolerance because psutil adds the boot time, which the kernel
reports in whole seconds computed from the wall clock: two readings of the same
process can differ by a second. A reused pid would also have to lead a process
group of the same id and start within that second, which a pid space that wraps
in minutes at the very least does not produce.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import psutil

from fogverse.processes.groups import signal_group, wait_gone

__all__ = ["CREATE_TIME_TOLERANCE_S", "ProcessIdentity"]

CREATE_TIME_TOLERANCE_S: Final = 1.0
_KILL_WAIT_S: Final = 5.0


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as it can be recognised later: pid, process group, start time (epoch s)."""

    pid: int
    pgid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        """The identity of the running process ``pid``; ProcessLookupError if there is none."""
        try:
            created = psutil.Process(pid).create_time()
            return cls(pid=pid, pgid=os.getpgid(pid), create_time=created)
        except psutil.NoSuchProcess:
            raise ProcessLookupError(f"no process {pid}") from None

    def to_info(self) -> dict[str, Any]:
        """Plain values (msgpack- and JSON-safe) that :meth:`from_info` reads back."""
        return asdict(self)

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ProcessIdentity:
        """Read a record made by :meth:`to_info`; ValueError naming the bad field."""
        values: dict[str, Any] = {}
        for name, kinds in (("pid", int), ("pgid", int), ("create_time", (int, float))):
            value = info.get(name)
            if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
                raise ValueError(f"process record field {name!r} must be a positive number,"
                                 f" got {value!r}")
            values[name] = value
        return cls(pid=values["pid"], pgid=values["pgid"],
                   create_time=float(values["create_time"]))

    def find(self) -> psutil.Process | None:
        """The recorded process if it still runs, None if it has gone or its pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            created = proc.create_time()
            pgid = os.getpgid(self.pid)
            finished = proc.status() == psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, ProcessLookupError):
            return None
        if finished or pgid != self.pgid:
            return None
        if abs(created - self.create_time) > CREATE_TIME_TOLERANCE_S:
            return None
        return proc

    def stop(self, grace: float) -> bool:
        """SIGTERM the recorded process's group, SIGKILL what is left after ``grace`` s.

        False if the process was already gone (then nothing is signalled: its group
        id may belong to someone else by now). The group is signalled only right
        after the leader was seen alive, which is what keeps the id ours.
        """
        leader = self.find()
        if leader is None:
            return False
        members = _group_members(self.pgid)
        signal_group(self.pgid, signal.SIGTERM)
        left = wait_gone(members, grace)
        if not left:
            return True
        if self.find() is not None:
            signal_group(self.pgid, signal.SIGKILL)
        for proc in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()  # psutil refuses if the pid now names another process
        wait_gone(left, _KILL_WAIT_S)
        return True


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for pid in psutil.pids():
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pgid:
                members.append(psutil.Process(pid))
    return members
