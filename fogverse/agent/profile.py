"""Device profiles from the environment, so a laptop can play a phone (seed 001).

================  ====================================================  =================
variable          meaning                                               example
================  ====================================================  =================
BATTERY           battery percent (0-100); makes the device battery-    ``15``
                  powered
CHARGING          plugged in: true/false, yes/no, 1/0                   ``false``
THERMAL           CPU degrees Celsius, or a state word (normal, warm,   ``65``, ``hot``
                  hot, critical)
MEMORY_GB         total memory; the used share stays the real one       ``2``
CPU_CORES         number of cores                                       ``4``
CPU_PERCENT       CPU utilisation (0-100), ours: pins a noisy host's    ``10``
                  load so a demo or test scores nodes predictably
GPU               has a GPU: true/false (a model name counts as true)   ``Adreno 660``
AIV_MOBILE_PROFILE  a preset filling the variables above that are unset  ``battery_save``
================  ====================================================  =================

Presets (the guide's scenarios; a variable that is set always wins):

- ``battery_save``: BATTERY 15, CHARGING false.
- ``thermal_throttle``: THERMAL 65 (hot: see :mod:`fogverse.agent.thermal`).
- ``low_ram``: MEMORY_GB 2.
- ``performance``: BATTERY 90, CHARGING true, THERMAL normal, MEMORY_GB 8.

An agent started with ``--profile-file PATH`` re-reads that file (``KEY=VALUE``
lines, the same names) before every report, its values over the environment's:
a demo or a test can heat a device up or drain its battery while it runs.

A value that cannot be read fails at start with :class:`~fogverse.errors.ConfigError`
naming the variable, rather than silently playing the wrong device.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fogverse.agent.probe import DeviceReading
from fogverse.agent.thermal import STATE_WORDS, thermal_state
from fogverse.errors import ConfigError

__all__ = ["ENV_PROFILE", "PRESETS", "DeviceProfile", "profile_from_env", "read_profile_file"]

ENV_PROFILE: Final = "AIV_MOBILE_PROFILE"

PRESETS: Final[Mapping[str, Mapping[str, str]]] = {
    "battery_save": {"BATTERY": "15", "CHARGING": "false"},
    "thermal_throttle": {"THERMAL": "65"},
    "low_ram": {"MEMORY_GB": "2"},
    "performance": {"BATTERY": "90", "CHARGING": "true", "THERMAL": "normal",
                    "MEMORY_GB": "8"},
}

_TRUE: Final = frozenset({"1", "true", "yes", "on", "y"})
_FALSE: Final = frozenset({"0", "false", "no", "off", "n", "none", ""})


@dataclass(frozen=True)
class DeviceProfile:
    """Overrides for what psutil reads; None leaves the real reading alone."""

    name: str | None = None
    """The preset, or ``"env"`` when only plain variables were set; None: no profile."""
    battery_percent: float | None = None
    charging: bool | None = None
    cpu_temp_c: float | None = None
    thermal_state: str | None = None
    memory_gb: float | None = None
    cpu_cores: int | None = None
    cpu_percent: float | None = None
    gpu: bool | None = None

    def apply(self, reading: DeviceReading) -> DeviceReading:
        """``reading`` with this profile's values in place of the sensors'."""
        changes: dict[str, object] = {}
        if self.battery_percent is not None:
            changes.update(battery_powered=True, battery_percent=self.battery_percent)
        if self.charging is not None:
            changes["charging"] = self.charging
        if self.thermal_state is not None:
            changes.update(thermal_state=self.thermal_state, cpu_temp_c=self.cpu_temp_c)
        if self.memory_gb is not None:
            total = self.memory_gb * 1024
            changes.update(memory_total_mb=total,
                           memory_used_mb=total * _used_share(reading))
        if self.cpu_cores is not None:
            changes["cpu_cores"] = self.cpu_cores
        if self.cpu_percent is not None:
            changes["cpu_percent"] = self.cpu_percent
        if self.gpu is not None:
            changes["gpu"] = self.gpu
        return dataclasses.replace(reading, **changes)  # type: ignore[arg-type]


def _used_share(reading: DeviceReading) -> float:
    total, used = reading.memory_total_mb, reading.memory_used_mb
    if not total or used is None:
        return 0.0
    return min(1.0, max(0.0, used / total))


def profile_from_env(env: Mapping[str, str]) -> DeviceProfile:
    """The profile the environment describes (an empty one when nothing is set)."""
    preset_name = env.get(ENV_PROFILE, "").strip().lower() or None
    values: dict[str, str] = {}
    if preset_name is not None:
        if preset_name not in PRESETS:
            raise ConfigError(ENV_PROFILE, preset_name, f"expected one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset_name])
    explicit = {k: env[k] for k in ("BATTERY", "CHARGING", "THERMAL", "MEMORY_GB",
                                    "CPU_CORES", "CPU_PERCENT", "GPU")
                if env.get(k, "").strip()}
    values.update(explicit)
    if not values:
        return DeviceProfile()
    temp, state = _thermal(values.get("THERMAL"))
    return DeviceProfile(
        name=preset_name or "env",
        battery_percent=_number(values, "BATTERY", 0.0, 100.0),
        charging=_bool(values, "CHARGING"),
        cpu_temp_c=temp,
        thermal_state=state,
        memory_gb=_number(values, "MEMORY_GB", 1e-3, 1e6),
        cpu_cores=_cores(values),
        cpu_percent=_number(values, "CPU_PERCENT", 0.0, 100.0),
        gpu=_gpu(values),
    )


def _number(values: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    raw = values.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, raw, "expected a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(name, raw, f"expected a number from {low:g} to {high:g}")
    return value


def _bool(values: Mapping[str, str], name: str) -> bool | None:
    raw = values.get(name)
    if raw is None:
        return None
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(name, raw, "expected true or false")


def _thermal(raw: str | None) -> tuple[float | None, str | None]:
    if raw is None:
        return None, None
    word = raw.strip().lower()
    if word in STATE_WORDS:
        return None, word
    celsius = _number({"THERMAL": word}, "THERMAL", -60.0, 150.0)
    return celsius, thermal_state(celsius)


def _cores(values: Mapping[str, str]) -> int | None:
    raw = values.get("CPU_CORES")
    if raw is None:
        return None
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError("CPU_CORES", raw, "expected a whole number of at least 1")
    return int(raw)


def _gpu(values: Mapping[str, str]) -> bool | None:
    raw = values.get("GPU")
    if raw is None:
        return None
    word = raw.strip().lower()
    return word not in _FALSE  # "true", "1" or a model name such as "Adreno 660"


def read_profile_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped); a missing file is empty."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}", line, "expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values
