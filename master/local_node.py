"""The Master's own machine as a scheduling node, described by psutil.

Reading sensors is I/O, so it lives here and not in the pure scheduling core.
Sensors a machine lacks (no battery, no temperature readings) are reported as
absent, never guessed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import psutil

from master.scheduling import Capacity, ThermalState

__all__ = ["local_capacity", "local_node_id", "thermal_state_for"]

WARM_C = 70.0
HOT_C = 85.0
CRITICAL_C = 95.0


def local_node_id() -> str:
    return f"master@{socket.gethostname()}"


def thermal_state_for(celsius: float | None) -> ThermalState:
    if celsius is None:
        return ThermalState.NORMAL
    if celsius >= CRITICAL_C:
        return ThermalState.CRITICAL
    if celsius >= HOT_C:
        return ThermalState.HOT
    if celsius >= WARM_C:
        return ThermalState.WARM
    return ThermalState.NORMAL


def _cpu_temperature() -> float | None:
    read: Callable[[], dict[str, list[object]]] | None = getattr(
        psutil, "sensors_temperatures", None)
    if read is None:
        return None
    try:
        sensors = read()
    except (OSError, RuntimeError):
        return None
    readings = [getattr(s, "current", None) for group in sensors.values() for s in group]
    values = [float(v) for v in readings if isinstance(v, int | float)]
    return max(values) if values else None


def local_capacity(cpu_utilization: float | None = None) -> Capacity:
    """This machine now. ``cpu_utilization`` (0-1) may be passed in by a caller that
    samples it over an interval; otherwise psutil's figure since its last call is used."""
    memory = psutil.virtual_memory()
    battery = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
    temperature = _cpu_temperature()
    if cpu_utilization is None:
        cpu_utilization = psutil.cpu_percent(interval=None) / 100.0
    total_mb = memory.total // (1024 * 1024)
    used_mb = min(total_mb, (memory.total - memory.available) // (1024 * 1024))
    return Capacity(
        cpu_cores=psutil.cpu_count() or 1,
        cpu_utilization=min(1.0, max(0.0, cpu_utilization)),
        memory_mb=total_mb,
        memory_used_mb=used_mb,
        battery_powered=battery is not None,
        battery_percent=None if battery is None else float(battery.percent),
        is_charging=bool(battery is not None and battery.power_plugged),
        thermal_state=thermal_state_for(temperature),
        cpu_temperature_c=temperature,
        network_bandwidth_mbps=1000.0,  # the master's own node: no network hop
        network_latency_ms=0.0,
    )
