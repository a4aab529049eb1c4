"""A fleet for the master's tests: the master's fleet service in-process, real agents around it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fogverse.tasks.client import TaskClient
from master.fleet import FleetService, FleetSettings
from tests.agent.agent_procs import start_agent, stop_agent
from tests.polling import wait_until


class Fleet:
    def __init__(self, bootstrap: str, unique: Callable[[str], str], logs: Path) -> None:
        self.bootstrap = bootstrap
        self.logs = logs
        self.settings = FleetSettings(
            bootstrap, master_id=unique("master"), nodes_topic=unique("nodes"),
            orders_topic=unique("orders"), tasks_topic=unique("tasks"),
            status_topic=unique("status"), tick_s=0.05, settle_s=0.5,
        )
        self.service = FleetService(self.settings)
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.client = TaskClient(bootstrap, tasks_topic=self.settings.tasks_topic,
                                 status_topic=self.settings.status_topic)

    def start_agent(self, node_id: str, profile: dict[str, str] | None = None,
                    **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = start_agent(self.bootstrap, node_id, self.settings.nodes_topic,
                           self.settings.orders_topic, self.logs, profile=profile,
                           master=self.settings.master_id, **kwargs)
        self.agents[node_id] = proc
        return proc

    async def wait_nodes(self, *node_ids: str) -> None:
        await wait_until(lambda: set(node_ids) <= set(self.service.nodes.entries),
                         timeout=60, what=f"nodes {node_ids} to report")

    def kill(self, node_id: str) -> None:
        stop_agent(self.agents.pop(node_id), signal.SIGKILL)


@contextlib.asynccontextmanager
async def running_fleet(bootstrap: str, unique: Callable[[str], str], logs: Path
                        ) -> AsyncIterator[Fleet]:
    fleet = Fleet(bootstrap, unique, logs)
    task = asyncio.create_task(fleet.service.run())
    try:
        await asyncio.wait_for(fleet.service.ready.wait(), 60)
        await asyncio.to_thread(fleet.client.start)
        yield fleet
    finally:
        for proc in fleet.agents.values():
            stop_agent(proc)
        fleet.service.stop()
        await task
        await asyncio.to_thread(fleet.client.close)
