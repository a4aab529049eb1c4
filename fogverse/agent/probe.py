"""What this device has and how busy it is, read with psutil.

Every reading is either what a sensor said or ``None`` (unknown): a missing
battery driver, no temperature sensor or no way to see a GPU is reported as
unknown and left to the master's policies, never guessed.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil

from fogverse.agent.thermal import thermal_state

__all__ = ["DeviceProbe", "DeviceReading", "cpu_temperature", "network_type"]

# psutil's sensor names for the CPU package, most specific first (Intel, AMD,
# Raspberry Pi / Jetson SoCs, then the ACPI zone most laptops expose).
_CPU_SENSORS: Final = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal",
                       "soc_thermal", "cpu", "acpitz")
_VIRTUAL_NICS: Final = ("lo", "docker", "veth", "br-", "virbr", "ifb", "tun", "tap", "vnet")
_POWER_SUPPLY: Final = Path("/sys/class/power_supply")
_MB: Final = 1024 * 1024


@dataclass(frozen=True)
class DeviceReading:
    """One look at the device; None means the sensor was not there."""

    cpu_cores: int | None = None
    cpu_percent: float | None = None
    memory_total_mb: float | None = None
    memory_used_mb: float | None = None
    gpu: bool | None = None
    gpu_memory_mb: float | None = None
    battery_powered: bool | None = None
    battery_percent: float | None = None
    charging: bool | None = None
    cpu_temp_c: float | None = None
    thermal_state: str = "unknown"
    network_type: str | None = None


def cpu_temperature(sensors: Mapping[str, Sequence[Any]]) -> float | None:
    """The hottest current reading of the CPU's sensor, or None without one."""
    for name in _CPU_SENSORS:
        readings = [s.current for s in sensors.get(name, ()) if s.current is not None]
        if readings:
            return float(max(readings))
    return None


def network_type(stats: Mapping[str, Any], is_wireless: Any = None) -> str | None:
    """``ethernet``, ``wifi`` or ``cellular`` by the interfaces that are up; None if unsure."""
    wireless = is_wireless or _is_wireless
    found: set[str] = set()
    for name, stat in stats.items():
        if not stat.isup or name.startswith(_VIRTUAL_NICS):
            continue
        if wireless(name) or name.startswith(("wl", "wifi")):
            found.add("wifi")
        elif name.startswith(("wwan", "rmnet", "ppp", "ccmni")):
            found.add("cellular")
        elif name.startswith(("eth", "en", "em")):
            found.add("ethernet")
    for kind in ("ethernet", "wifi", "cellular"):  # the best link wins
        if kind in found:
            return kind
    return None


def _is_wireless(name: str) -> bool:
    return Path(f"/sys/class/net/{name}/wireless").exists()


class DeviceProbe:
    """Reads the device; GPU presence is looked for once, the rest on every :meth:`read`."""

    def __init__(self) -> None:
        psutil.cpu_percent(None)  # the first call only starts psutil's measuring window
        self._gpu = _find_gpu()

    def read(self) -> DeviceReading:
        memory = psutil.virtual_memory()
        battery = _battery()
        temp = _cpu_temp()
        return DeviceReading(
            cpu_cores=psutil.cpu_count(logical=True),
            cpu_percent=min(100.0, max(0.0, float(psutil.cpu_percent(None)))),
            memory_total_mb=memory.total / _MB,
            memory_used_mb=(memory.total - memory.available) / _MB,
            gpu=self._gpu,
            battery_powered=battery[0],
            battery_percent=battery[1],
            charging=battery[2],
            cpu_temp_c=temp,
            thermal_state=thermal_state(temp),
            network_type=network_type(psutil.net_if_stats()),
        )


def _battery() -> tuple[bool | None, float | None, bool | None]:
    """(battery powered, percent, plugged in); each None when it cannot be told."""
    try:
        battery = psutil.sensors_battery()
    except (AttributeError, NotImplementedError, OSError):
        return None, None, None
    if battery is not None:
        percent = float(battery.percent)
        plugged = battery.power_plugged
        return True, min(100.0, max(0.0, percent)), None if plugged is None else bool(plugged)
    # On Linux psutil reads /sys/class/power_supply: a readable directory without
    # a battery is a device on mains. Elsewhere None only means "cannot tell".
    if sys.platform.startswith("linux") and _POWER_SUPPLY.is_dir():
        return False, None, None
    return None, None, None


def _cpu_temp() -> float | None:
    try:
        sensors = psutil.sensors_temperatures()
    except (AttributeError, NotImplementedError, OSError):
        return None
    return cpu_temperature(sensors)


def _find_gpu() -> bool | None:
    """True when a GPU is visible (NVIDIA driver or a Jetson); None when we cannot tell."""
    if shutil.which("nvidia-smi") or os.path.exists("/proc/driver/nvidia/version"):
        return True
    if os.path.exists("/etc/nv_tegra_release"):
        return True
    return None
