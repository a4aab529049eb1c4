"""psutil readings: what a sensor says, or unknown; never a guess."""

from __future__ import annotations

from collections import namedtuple

import pytest

from fogverse.agent.probe import DeviceProbe, cpu_temperature, network_type
from fogverse.agent.thermal import thermal_state

Temp = namedtuple("Temp", "label current high critical")
Nic = namedtuple("Nic", "isup")


def test_cpu_temperature_takes_the_hottest_core_of_the_cpu_sensor() -> None:
    sensors = {"nvme": [Temp("", 70.0, None, None)],
               "coretemp": [Temp("Core 0", 48.0, None, None), Temp("Core 1", 52.5, None, None)]}
    assert cpu_temperature(sensors) == 52.5


def test_cpu_temperature_falls_back_to_the_acpi_zone() -> None:
    assert cpu_temperature({"acpitz": [Temp("", 41.0, None, None)]}) == 41.0


def test_no_cpu_sensor_is_unknown() -> None:
    assert cpu_temperature({}) is None
    assert cpu_temperature({"nvme": [Temp("", 70.0, None, None)]}) is None


@pytest.mark.parametrize(
    ("nics", "expected"),
    [
        ({"lo": Nic(True), "eth0": Nic(True)}, "ethernet"),
        ({"lo": Nic(True), "wlan0": Nic(True)}, "wifi"),
        ({"wwan0": Nic(True)}, "cellular"),
        ({"wlp2s0": Nic(True), "enp3s0": Nic(True)}, "ethernet"),
        ({"eth0": Nic(False), "wlan0": Nic(True)}, "wifi"),
        ({"lo": Nic(True), "docker0": Nic(True), "veth12": Nic(True)}, None),
        ({}, None),
    ],
)
def test_network_type(nics: dict[str, Nic], expected: str | None) -> None:
    assert network_type(nics, is_wireless=lambda name: False) == expected


def test_a_real_reading_is_sane_or_unknown() -> None:
    reading = DeviceProbe().read()
    assert reading.cpu_cores is not None and reading.cpu_cores >= 1
    assert reading.cpu_percent is not None and 0.0 <= reading.cpu_percent <= 100.0
    assert reading.memory_total_mb is not None and reading.memory_used_mb is not None
    assert 0 < reading.memory_used_mb <= reading.memory_total_mb
    assert reading.battery_percent is None or 0 <= reading.battery_percent <= 100
    if reading.battery_powered is not True:
        assert reading.battery_percent is None and reading.charging is None
    assert reading.thermal_state == thermal_state(reading.cpu_temp_c)
