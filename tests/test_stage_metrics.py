"""Stage metrics scraped from real stages on the real broker, read with Prometheus' parser."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fogverse import Consumer, Producer
from fogverse.errors import ConfigError, PortInUseError
from tests.metric_names import check_metric_names
from tests.polling import wait_until

pytestmark = pytest.mark.kafka

COUNT = 200
BAD = {7, 70, 170}


class Readings(Producer):
    """COUNT readings, then nothing until stopped (its metrics stay up to be scraped)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.seq = -1

    def receive(self) -> dict[str, int] | None:
        if self.seq + 1 >= COUNT:
            return None
        self.seq += 1
        return {"seq": self.seq}


class Doubler(Consumer):
    """Fails on a few inputs, which go to the dead-letter topic."""

    def process(self, data: dict[str, int]) -> dict[str, int]:
        if data["seq"] in BAD:
            raise ValueError(f"bad reading {data['seq']}")
        return {"seq": data["seq"], "double": 2 * data["seq"]}


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (checked, not reserved)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError("no run of free ports")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as (name, sorted labels) -> value; also checks the naming rules."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert check_metric_names(text) == []
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_two_stages_on_one_port_range_count_what_they_did(
    kafka_bootstrap: str, unique: Callable[[str], str], client: str
) -> None:
    # On both backends: the lag is read through the client interface.
    first = free_ports(2)
    common = {"consumer_servers": kafka_bootstrap, "heartbeat": False,
              "metrics_port": f"{first}-{first + 1}"}
    source_topic, target = unique("m-in"), unique("m-out")
    stage = Doubler(consumer_topic=source_topic, producer_topic=target,
                    group_id=unique("m"), **common)
    running = asyncio.create_task(stage.run())
    await wait_until(lambda: stage.served_metrics_port is not None, timeout=60,
                     what="the stage's metrics server")
    source = Readings(producer_topic=source_topic, **common)
    feeding = asyncio.create_task(source.run())
    await wait_until(lambda: source.served_metrics_port is not None, what="the source's")
    # One range, one port each.
    assert {stage.served_metrics_port, source.served_metrics_port} == {first, first + 1}
    try:
        await wait_until(lambda: source.stats.produced == COUNT, timeout=60, what="every reading")
        at_source = await asyncio.to_thread(scrape, source.served_metrics_port)  # type: ignore[arg-type]
        assert at_source[("fogverse_stage_messages_out_total", (("stage", "Readings"),))] == COUNT
        source.stop()
        await feeding
        await wait_until(lambda: stage.stats.consumed == COUNT and stage.stats.lag == 0,
                         timeout=60, what="every reading consumed and the lag measured")
        got = await asyncio.to_thread(scrape, stage.served_metrics_port)  # type: ignore[arg-type]
    finally:
        stage.stop()
        await running
    me = (("stage", "Doubler"),)
    assert got[("fogverse_stage_messages_in_total", me)] == COUNT
    assert got[("fogverse_stage_messages_out_total", me)] >= COUNT  # outputs + dead letters
    assert got[("fogverse_stage_dead_letters_total", me)] == len(BAD)
    assert got[("fogverse_stage_consumer_lag_messages", me)] == 0
    for step in ("decode", "process", "encode", "send"):
        labels = (("stage", "Doubler"), ("step", step))
        # Each message that went all the way was timed once in every step.
        assert got[("fogverse_stage_step_duration_seconds_count", labels)] == COUNT - len(BAD)
        top = (("le", "+Inf"), ("stage", "Doubler"), ("step", step))
        assert got[("fogverse_stage_step_duration_seconds_bucket", top)] == COUNT - len(BAD)


async def test_a_taken_metrics_port_is_named_before_the_stage_runs(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stage = Doubler(consumer_topic=unique("m-busy"), consumer_servers=kafka_bootstrap,
                        heartbeat=False, metrics_port=port)
        with pytest.raises(PortInUseError) as caught:
            await stage.run()
    assert caught.value.setting == "metrics_port (FOGVERSE_METRICS_PORT)"
    assert f"{port} is already in use" in str(caught.value)


def test_a_bad_metrics_port_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match="metrics_port"):
        _ = Doubler(consumer_topic="x", metrics_port="91OO").config
    assert Doubler(consumer_topic="x", metrics_port="0").config.metrics_port == 0
