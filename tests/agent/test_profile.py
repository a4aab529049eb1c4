"""Device profiles from the environment override what psutil reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from fogverse.agent.probe import DeviceReading
from fogverse.agent.profile import PRESETS, DeviceProfile, profile_from_env, read_profile_file
from fogverse.errors import ConfigError

DESKTOP = DeviceReading(
    cpu_cores=8, cpu_percent=10.0, memory_total_mb=16384.0, memory_used_mb=4096.0,
    gpu=None, battery_powered=False, battery_percent=None, charging=None,
    cpu_temp_c=40.0, thermal_state="warm", network_type="ethernet",
)


def test_no_variables_no_profile() -> None:
    profile = profile_from_env({})
    assert profile == DeviceProfile()
    assert profile.apply(DESKTOP) == DESKTOP


def test_a_laptop_plays_a_phone_at_15_percent() -> None:
    reading = profile_from_env({"BATTERY": "15", "CHARGING": "no"}).apply(DESKTOP)
    assert (reading.battery_powered, reading.battery_percent, reading.charging) == (
        True, 15.0, False)
    assert reading.cpu_cores == 8  # untouched


def test_thermal_in_degrees_sets_temperature_and_state() -> None:
    reading = profile_from_env({"THERMAL": "50"}).apply(DESKTOP)
    assert (reading.cpu_temp_c, reading.thermal_state) == (50.0, "hot")


def test_thermal_as_a_word_sets_the_state_and_forgets_the_real_temperature() -> None:
    reading = profile_from_env({"THERMAL": "Critical"}).apply(DESKTOP)
    assert (reading.cpu_temp_c, reading.thermal_state) == (None, "critical")


def test_memory_keeps_the_real_used_share() -> None:
    reading = profile_from_env({"MEMORY_GB": "2"}).apply(DESKTOP)
    assert reading.memory_total_mb == 2048.0
    assert reading.memory_used_mb == pytest.approx(512.0)  # 25 % as on the real host


def test_cores_load_and_gpu() -> None:
    reading = profile_from_env({"CPU_CORES": "4", "CPU_PERCENT": "75", "GPU": "Adreno 660"}
                               ).apply(DESKTOP)
    assert (reading.cpu_cores, reading.cpu_percent, reading.gpu) == (4, 75.0, True)
    assert profile_from_env({"GPU": "false"}).apply(DESKTOP).gpu is False


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("battery_save", {"battery_percent": 15.0, "charging": False}),
        ("thermal_throttle", {"cpu_temp_c": 65.0, "thermal_state": "hot"}),
        ("low_ram", {"memory_total_mb": 2048.0}),
        ("performance", {"battery_percent": 90.0, "charging": True,
                         "thermal_state": "normal", "memory_total_mb": 8192.0}),
    ],
)
def test_presets(preset: str, expected: dict[str, object]) -> None:
    profile = profile_from_env({"AIV_MOBILE_PROFILE": preset})
    assert profile.name == preset
    reading = profile.apply(DESKTOP)
    for name, value in expected.items():
        assert getattr(reading, name) == value, name


def test_a_set_variable_beats_the_preset() -> None:
    reading = profile_from_env({"AIV_MOBILE_PROFILE": "battery_save", "BATTERY": "55"}).apply(
        DESKTOP)
    assert (reading.battery_percent, reading.charging) == (55.0, False)


def test_every_preset_is_documented_in_the_module() -> None:
    import fogverse.agent.profile as module

    for name in PRESETS:
        assert f"``{name}``" in (module.__doc__ or "")


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"BATTERY": "250"}, "BATTERY"),
        ({"BATTERY": "lots"}, "BATTERY"),
        ({"BATTERY": "nan"}, "BATTERY"),
        ({"CHARGING": "maybe"}, "CHARGING"),
        ({"THERMAL": "toasty"}, "THERMAL"),
        ({"MEMORY_GB": "-2"}, "MEMORY_GB"),
        ({"CPU_CORES": "0"}, "CPU_CORES"),
        ({"CPU_CORES": "2.5"}, "CPU_CORES"),
        ({"CPU_PERCENT": "101"}, "CPU_PERCENT"),
        ({"AIV_MOBILE_PROFILE": "turbo"}, "AIV_MOBILE_PROFILE"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        profile_from_env(env)
    assert caught.value.setting == setting
    assert setting in str(caught.value)


def test_a_profile_file_is_read_as_key_value_lines(tmp_path: Path) -> None:
    path = tmp_path / "profile.env"
    assert read_profile_file(path) == {}  # not there yet: nothing to override
    path.write_text("# a phone heating up\nBATTERY = 40\n\nTHERMAL=70\n")
    assert read_profile_file(path) == {"BATTERY": "40", "THERMAL": "70"}
    path.write_text("THERMAL\n")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        read_profile_file(path)
