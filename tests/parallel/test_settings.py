"""Parallel settings: defaults, FogVerse-style attributes, and refusals."""

from __future__ import annotations

import pytest

from fogverse.errors import ConfigError
from fogverse.parallel import ParallelConsumer, ParallelSettings
from fogverse.parallel.settings import usable_cpus
from tests.parallel.procs import Echo


def test_defaults_follow_the_cpus() -> None:
    settings = ParallelSettings()
    assert settings.workers == usable_cpus()
    assert settings.in_flight_limit == 16 * settings.workers
    assert ParallelSettings(process_number=3, max_running_task=5).in_flight_limit == 5


def test_attributes_keyword_arguments_and_settings_object_combine() -> None:
    class Stage(ParallelConsumer):
        process_number = 3  # FogVerse style: a class attribute

    stage = Stage(processor=Echo(), consumer_topic="t", ordered=False,
                  parallel=ParallelSettings(max_running_task=7, process_number=1))
    settings = stage.parallel
    assert (settings.process_number, settings.max_running_task, settings.ordered) == (3, 7, False)


@pytest.mark.parametrize(("name", "value"), [
    ("process_number", -1), ("max_running_task", 1.5), ("max_worker_kills", 0),
    ("worker_prefetch", 0), ("executor", "gpu"), ("start_method", "fork"),
    ("job_timeout", 0), ("stop_timeout", -2),
])
def test_bad_values_name_the_setting(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        ParallelSettings(**{name: value}).validate()  # type: ignore[arg-type]


def test_stage_settings_still_reach_the_stage() -> None:
    stage = ParallelConsumer(processor=Echo(), consumer_topic="in", producer_topic="out",
                             process_number=2)
    assert stage.config.producer_topic == "out"
    assert stage.parallel.process_number == 2
