"""The dashboard's routes on the master's HTTP server, and the sampler behind them.

``/dashboard/`` is the page, ``/dashboard/assets/<name>`` its scripts, styles and
the vendored charting library (read from the package, so a wheel carries them and
no CDN is needed), ``/api/dashboard`` the JSON the page polls: the sampled time
series plus the current tables. The sampler runs with the server, once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from master.dashboard.history import DashboardHistory
from master.dashboard.snapshot import current_view, sample_master

if TYPE_CHECKING:
    from master.master import Master

__all__ = ["DASHBOARD_PATH", "Dashboard", "load_assets"]

log = logging.getLogger("fogverse.master.dashboard")

DASHBOARD_PATH = "/dashboard/"
"""Where the page is served on the master's HTTP port."""

_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
          ".md": "text/markdown", ".LICENSE": "text/plain"}


def load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file the page may ask for, by name: its bytes and content type.

    Read once from the package; a name not in here is a 404, so no request can
    reach any other file."""
    out: dict[str, tuple[bytes, str]] = {}
    root = resources.files("master.dashboard").joinpath("assets")
    for folder, prefix in ((root, ""), (root.joinpath("vendor"), "vendor/")):
        for entry in folder.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
            if entry.is_file() and suffix in _TYPES:
                out[prefix + entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return out


class Dashboard:
    """Samples ``master`` every ``interval`` seconds while the server runs and serves
    the page; ``capacity`` samples are kept (ten minutes at one a second)."""

    def __init__(self, master: Master, *, interval: float = 1.0, capacity: int = 600) -> None:
        self._master = master
        self.interval = interval
        self.history = DashboardHistory(capacity)
        self._assets = load_assets()

    def install(self, app: web.Application) -> None:
        app.router.add_get("/", self._root)
        app.router.add_get("/dashboard", self._root)
        app.router.add_get(DASHBOARD_PATH, self._page)
        app.router.add_get("/dashboard/assets/{name:.+}", self._asset)
        app.router.add_get("/api/dashboard", self._api)
        app.cleanup_ctx.append(self._sampling)

    def sample(self) -> None:
        """Take one sample now (the sampler's tick)."""
        self.history.add(sample_master(self._master, time.time()))

    def payload(self) -> dict[str, Any]:
        """What ``/api/dashboard`` answers."""
        return {"now": time.time(), "interval_s": self.interval,
                **self.history.columns(), **current_view(self._master)}

    async def _sampling(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._sample_forever(), name="master-dashboard")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _sample_forever(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                # A chart with a gap is better than a dashboard that stops.
                log.exception("dashboard sample failed; the next one is in %gs", self.interval)
            await asyncio.sleep(self.interval)

    async def _root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(DASHBOARD_PATH)

    async def _page(self, request: web.Request) -> web.Response:
        body, kind = self._assets["index.html"]
        return web.Response(body=body, content_type=kind, headers=_NO_STORE)

    async def _asset(self, request: web.Request) -> web.Response:
        found = self._assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such dashboard asset")
        body, kind = found
        return web.Response(body=body, content_type=kind)

    async def _api(self, request: web.Request) -> web.Response:
        body = json.dumps(self.payload(), separators=(",", ":"), allow_nan=False)
        return web.Response(text=body, content_type="application/json", headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}
