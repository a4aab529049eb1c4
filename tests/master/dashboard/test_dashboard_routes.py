"""The dashboard's routes on a master that is built but not started (no broker):
every asset the page needs comes from the package, and the JSON the page polls
carries the stages, nodes and decisions the master knows."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from master import Master, master_settings
from master.dashboard import CHARTS, Dashboard
from master.deployer import DecisionRecord

ASSETS = Path(__file__).resolve().parents[3] / "master" / "dashboard" / "assets"


def _master() -> Master:
    return Master(master_settings({
        "consumer_topic": "dash-control", "consumer_servers": "127.0.0.1:1",
        "included_worker": ["AUTO_DEPLOYER", "STATISTIC_WORKER", "INPUT_OUTPUT_WORKER"],
        "services": {"slow": {
            "provider": "LOCAL", "module": "examples.autoscale.slow_stage",
            "min_instance": 1, "max_instance": 3, "source_topic": "dash-in",
            "target_topic": "dash-out",
        }},
    }))


Client = TestClient[web.Request, web.Application]


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[tuple[Client, Master, Dashboard]]:
    """The dashboard's routes alone on a test server, over an unstarted master."""
    master = _master()
    dashboard = Dashboard(master, interval=3600)
    app = web.Application()
    dashboard.install(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, master, dashboard
    finally:
        await client.close()


async def test_every_asset_the_page_names_is_served_from_the_package() -> None:
    async with serve() as (client, _, _):
        root = await client.get("/", allow_redirects=False)
        assert root.status == 302 and root.headers["Location"] == "/dashboard/"
        page = await client.get("/dashboard/")
        assert page.status == 200
        html = await page.text()
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs, "the page names no assets"
        for ref in refs:
            assert "//" not in ref, f"{ref} is fetched from outside the master"
            asset = await client.get(f"/dashboard/{ref}")
            assert asset.status == 200, ref
            assert await asset.read() == (ASSETS / ref.removeprefix("assets/")).read_bytes()


async def test_names_outside_the_assets_are_not_found() -> None:
    async with serve() as (client, _, _):
        for name in ("../routes.py", "..%2F__init__.py", "vendor/../../history.py", "nope.js"):
            response = await client.get(f"/dashboard/assets/{name}")
            assert response.status == 404, name


def test_the_vendored_note_names_the_version_that_is_vendored() -> None:
    header = (ASSETS / "vendor" / "uPlot.iife.min.js").read_text().splitlines()[0]
    version = re.search(r"\(v([\d.]+)\)", header)
    assert version is not None, header
    assert f"uPlot {version[1]}" in (ASSETS / "vendor" / "VENDORED.md").read_text()


async def test_the_polled_json_holds_series_stages_nodes_and_decisions() -> None:
    async with serve() as (client, master, dashboard):
        assert master.deployer is not None
        master.deployer.decisions.append(DecisionRecord(
            time.time(), "dash-in->dash-out", "scale_out", "needs_more", "lag growing", 2))
        master.deployer.decisions.append(DecisionRecord(
            time.time(), "dash-in->dash-out", "hold", "at_max", "at max_instance 3", 3))
        dashboard.sample()  # besides the sampler's own first one

        data = await (await client.get("/api/dashboard")).json()

        assert len(data["t"]) == len(dashboard.history) >= 2
        assert set(data["charts"]) == set(CHARTS)
        assert data["charts"]["instances"] == {"dash-in->dash-out": [0] * len(data["t"])}
        local = master.scheduler.local_node_id
        assert local is not None and data["charts"]["node_score"][local][0] is not None
        [stage] = data["stages"]
        assert (stage["stage"], stage["live"], stage["min"], stage["max"], stage["provider"]) == (
            "dash-in->dash-out", 0, 1, 3, "LOCAL")
        assert [n["node"] for n in data["nodes"]] == [local]
        assert [(d["action"], d["code"]) for d in data["decisions"]] == [
            ("hold", "at_max"), ("scale_out", "needs_more")]
