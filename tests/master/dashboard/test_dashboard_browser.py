"""The dashboard in a real headless Chromium while a real pipeline scales itself.

Real broker, real master, real LOCAL child processes (the autoscale example's slow
stage, about 100 messages/s each), a load step from well under one instance's
capacity to well over it. The test reads what the page rendered (the legends'
data attributes, the stages table, the decision log), not the JSON behind it, and
keeps a screenshot of the page after the scale-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fogverse.admin import KafkaAdmin
from master import Master, master_settings
from tests.browser import save_screenshot
from tests.master.master_helpers import FeederThread
from tests.polling import wait_for_value, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
CAPACITY = 100  # messages/s one slow_stage instance handles (SLOW_SECONDS = 0.01)
CALM, LOAD = 40, 250  # the step: well under one instance, then over two

# What the page shows, read back from the DOM it built.
_LEGEND = """
const [chart, series] = arguments;
const item = [...document.querySelectorAll(`[data-chart="${chart}"] .legend li`)]
  .find((li) => li.dataset.series === series);
return item ? item.dataset.value : null;
"""
_POINTS = 'return document.querySelector(`[data-chart="${arguments[0]}"]`).dataset.points;'
_STAGE_LIVE = """
const row = [...document.querySelectorAll("#stages tbody tr")]
  .find((tr) => tr.dataset.stage === arguments[0]);
return row ? row.querySelector('[data-field="live"]').textContent : null;
"""
_DECISIONS = """
return [...document.querySelectorAll("#decisions li[data-action]")]
  .map((li) => [li.dataset.stage, li.dataset.action, li.dataset.code]);
"""


def settings_for(servers: str, control: str, source: str, target: str, group: str) -> Any:
    return master_settings({
        "consumer_topic": control, "consumer_servers": servers,
        "consumer_group_id": f"{control}-master", "http_port": 0,
        "included_worker": ["AUTO_DEPLOYER", "STATISTIC_WORKER", "INPUT_OUTPUT_WORKER"],
        "services": {"slow": {
            "provider": "LOCAL", "module": "examples.autoscale.slow_stage", "cwd": str(ROOT),
            "min_instance": 1, "max_instance": 2, "source_topic": source,
            "target_topic": target, "group_id": group,
            "env": {"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": group,
                    "SLOW_SECONDS": str(1 / CAPACITY), "CONTROL_TOPIC": control},
        }},
    })


async def test_dashboard_shows_the_stage_scale_out_in_chromium(
    kafka_bootstrap: str, unique: Callable[[str], str], chromium: Any, tmp_path: Path
) -> None:
    control, source, target, group = (unique(p) for p in ("control", "in", "out", "slow"))
    admin = KafkaAdmin(kafka_bootstrap)
    await admin.ensure_topic(source, 1)
    await admin.ensure_topic(target, 1)
    master = Master(settings_for(kafka_bootstrap, control, source, target, group))
    stage = f"{source}->{target}"
    feeder: FeederThread | None = None

    async def page(script: str, *args: Any) -> Any:
        # The driver blocks; the master's loop must keep ticking meanwhile.
        return await asyncio.to_thread(chromium.execute_script, script, *args)

    async def instances_shown() -> Any:
        return await page(_LEGEND, "instances", stage)

    try:
        await master.start()
        assert master.http is not None
        await asyncio.to_thread(chromium.get, master.http.dashboard_url)
        await wait_for_value(instances_shown, "1", timeout=60)
        feeder = FeederThread(CALM, producer_topic=source, consumer_servers=kafka_bootstrap,
                              control_topic=control)
        await wait_until(lambda: feeder is not None and feeder.sent > 0, timeout=30,
                         what="the feeder's first message acknowledged")
        points_before = int(await page(_POINTS, "instances"))

        feeder.feeder.rate = LOAD  # the load step
        await wait_for_value(instances_shown, "2", timeout=90)

        assert await page(_STAGE_LIVE, stage) == "2"
        assert [stage, "scale_out", "needs_more"] in await page(_DECISIONS)
        assert float(await page(_LEGEND, "throughput", source) or 0) > 0
        assert int(await page(_POINTS, "instances")) > points_before
        shot = save_screenshot(chromium, tmp_path, "dashboard-scaled-out.png")
        assert shot.stat().st_size > 10_000
        print(f"dashboard screenshot: {shot}")
    finally:
        if feeder is not None:
            feeder.stop()
        await master.close()
        admin.close()
