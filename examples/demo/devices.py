"""The demo's three devices: real ``fogverse agent`` processes playing a desktop and two phones.

Each agent reads its device profile from the environment (BATTERY, CHARGING,
THERMAL, AIV_MOBILE_PROFILE: see :mod:`fogverse.agent.profile`), so one laptop
can stand in for a fleet. ``CPU_PERCENT`` pins the reported load: the shared
machine's real load would otherwise reorder the nodes from one run to the next.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fogverse import processes
from fogverse.agent.profile import ENV_PROFILE
from fogverse.constants import ENV_CONTROL_KEY

__all__ = ["CPU_PER_INSTANCE", "DEVICES", "Device", "DeviceLoad", "start_agents", "stop_agents"]

CPU_PER_INSTANCE = 30.0
"""CPU percent a device reports per analysis instance it runs (what a model on a phone costs).

The demo's stage only waits, so the real load would not show; without this every
instance would land on the one best node."""

_PROFILE_VARS = ("BATTERY", "CHARGING", "THERMAL", "MEMORY_GB", "CPU_CORES", "CPU_PERCENT",
                 "GPU", ENV_PROFILE)


@dataclass(frozen=True)
class Device:
    node_id: str
    label: str
    """What it plays, for people."""
    profile: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


DEVICES: tuple[Device, ...] = (
    Device("desktop", "desktop on mains", {"THERMAL": "normal", "CPU_PERCENT": "20"},
           ("desktop",)),
    Device("phone-charging", "phone, 80 % and charging",
           {"BATTERY": "80", "CHARGING": "true", "THERMAL": "normal", "CPU_PERCENT": "20"},
           ("phone",)),
    Device("phone-low", "phone, 15 % battery",
           {ENV_PROFILE: "battery_save", "THERMAL": "normal", "CPU_PERCENT": "20"},
           ("phone",)),
)


def start_agents(
    bootstrap: str, master_id: str, nodes_topic: str, orders_topic: str, log_dir: Path,
    devices: tuple[Device, ...] = DEVICES, handlers: str | None = None,
) -> dict[str, subprocess.Popen[bytes]]:
    """One agent per device, each logging to ``log_dir/<node>.agent.log``.

    ``handlers`` (``module:object``) are the task handlers the agents load.
    """
    # The demo's own profile variables must not leak into every device.
    base = {k: v for k, v in os.environ.items() if k not in _PROFILE_VARS}
    procs = {}
    for device in devices:
        argv = [sys.executable, "-m", "fogverse", "agent", "--bootstrap", bootstrap,
                "--node-id", device.node_id, "--master", master_id, "--interval", "1",
                "--nodes-topic", nodes_topic, "--orders-topic", orders_topic,
                "--log-dir", str(log_dir), "--tags", ",".join(device.tags),
                "--profile-file", str(profile_path(log_dir, device))]
        if handlers:
            argv += ["--handlers", handlers]
        env = {**base, **device.profile}
        if ENV_CONTROL_KEY in os.environ:
            env[ENV_CONTROL_KEY] = os.environ[ENV_CONTROL_KEY]
        with open(log_dir / f"{device.node_id}.agent.log", "ab") as log:
            # An agent dies with the demo, and takes its instances with it.
            procs[device.node_id] = processes.spawn(
                argv, output=log, env=env, cwd=Path(__file__).resolve().parents[2],
                die_with_parent=signal.SIGTERM)
    return procs


def profile_path(log_dir: Path, device: Device) -> Path:
    return log_dir / f"{device.node_id}.profile"


class DeviceLoad:
    """Keeps each device's reported CPU load in step with the instances it runs.

    Through the agents' ``--profile-file``, which they re-read before every report.
    """

    def __init__(self, log_dir: Path, devices: tuple[Device, ...] = DEVICES) -> None:
        self._log_dir = log_dir
        self._devices = devices
        self._written: dict[str, int] = {}
        self.update({})

    def update(self, placement: Mapping[str, str]) -> None:
        """``placement``: instance id -> node id."""
        for device in self._devices:
            count = sum(1 for node in placement.values() if node == device.node_id)
            if self._written.get(device.node_id) == count:
                continue
            base = float(device.profile.get("CPU_PERCENT", "0"))
            path = profile_path(self._log_dir, device)
            partial = path.with_suffix(".partial")
            partial.write_text(f"CPU_PERCENT={min(100.0, base + CPU_PER_INSTANCE * count):g}\n")
            partial.replace(path)  # an agent never reads half a file
            self._written[device.node_id] = count


def stop_agents(procs: Mapping[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every agent (each stops its instances), SIGKILL what lingers."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        processes.terminate(proc, grace=15.0)
