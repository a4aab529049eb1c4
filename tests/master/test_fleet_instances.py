"""The AGENT provider: instances on the best node, moved when that node turns hot."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from deploy_scripts.agent import AgentProvider
from deploy_scripts.config import ServiceSpec
from deploy_scripts.errors import DeployError
from fogverse.wire.nodes import InstanceEvent, InstanceStart, encode_fleet
from master.instance_moves import InstanceMover
from tests.agent.agent_procs import NodeWatch
from tests.master.fleet_helpers import running_fleet
from tests.polling import wait_until

pytestmark = pytest.mark.slow

_STAGE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    out = Path(sys.argv[1]) / (os.environ["FOGVERSE_NODE_ID"] + ".pid")
    env = os.environ
    out.write_text(f"{os.getpid()} {env['FOGVERSE_INSTANCE_ID']} {env['STAGE_SETTING']}")
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_an_agent_instance_lands_on_the_best_node_and_moves_when_it_turns_hot(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    phone_profile = tmp_path / "phone.env"
    phone_profile.write_text("BATTERY=80\nCHARGING=true\nTHERMAL=normal\nCPU_PERCENT=10\n")
    spec = ServiceSpec("detect", provider="AGENT",
                       command=(sys.executable, "-c", _STAGE, str(runs)),
                       env={"STAGE_SETTING": "from-config"}, max_instance=2)
    async with running_fleet(kafka_bootstrap, unique, tmp_path) as fleet:
        watch = NodeWatch(kafka_bootstrap, fleet.settings.nodes_topic)
        provider = AgentProvider({"detect": spec}, fleet.service, start_timeout=60,
                                 stop_grace=5)
        mover = InstanceMover(fleet.service, provider)
        fleet.start_agent("phone", profile_file=phone_profile)  # charging: the best node
        fleet.start_agent("desktop", {"THERMAL": "normal", "CPU_PERCENT": "10"})
        await fleet.wait_nodes("phone", "desktop")
        # The deployer calls providers from a thread; so does this test.
        result = await asyncio.to_thread(provider, logging.getLogger("test"),
                                         {"service_name": "detect"})
        assert result.info["node"] == "phone"
        on_phone = runs / "phone.pid"
        await wait_until(lambda: on_phone.exists() and on_phone.read_text(), timeout=60)
        old_pid, instance_id, setting = on_phone.read_text().split()
        assert (instance_id, setting) == (result.instance_id, "from-config")

        # It heats up:
        phone_profile.write_text("BATTERY=80\nCHARGING=true\nTHERMAL=70\nCPU_PERCENT=10\n")
        on_desktop = runs / "desktop.pid"
        await wait_until(lambda: on_desktop.exists() and on_desktop.read_text(), timeout=60,
                         what="the instance to start on the desktop")
        await wait_until(lambda: not _alive(int(old_pid)), timeout=60,
                         what="the instance on the hot phone to stop")
        assert on_desktop.read_text().split()[1] == result.instance_id  # same instance id
        await asyncio.to_thread(watch.wait_for, InstanceEvent,
                                lambda e: (e.node_id, e.state) == ("phone", "stopped"))
        events = [(e.node_id, e.state) for e in watch.bodies(InstanceEvent)]
        assert events.index(("desktop", "started")) < events.index(("phone", "stopped"))
        await wait_until(lambda: mover.moves == 1, timeout=30)
        assert provider.instances_on("desktop") == [result.instance_id]

        stopped = await asyncio.to_thread(result.stop)
        assert isinstance(stopped, InstanceEvent) and stopped.node_id == "desktop"
        new_pid = int(on_desktop.read_text().split()[0])
        await wait_until(lambda: not _alive(new_pid), timeout=30)
        watch.close()


async def test_no_node_for_an_instance_is_a_deploy_error(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    spec = ServiceSpec("detect", provider="AGENT", command=(sys.executable, "-c", "pass"))
    async with running_fleet(kafka_bootstrap, unique, tmp_path) as fleet:
        provider = AgentProvider({"detect": spec}, fleet.service)
        fleet.start_agent("phone-low", {"BATTERY": "15", "CHARGING": "false"})
        await fleet.wait_nodes("phone-low")
        with pytest.raises(DeployError, match="no node can take an instance of 'detect'"):
            await asyncio.to_thread(provider, logging.getLogger("test"),
                                    {"service_name": "detect"})
        with pytest.raises(DeployError, match="not declared"):
            await asyncio.to_thread(provider, logging.getLogger("test"),
                                    {"service_name": "nope"})
    assert os.environ.get("STAGE_SETTING") is None  # the config's env went to the child only


@pytest.mark.skip(reason="known race (issue 9 stays open): after an agent restart the master"
                  " sometimes never starts the dead instance again, or never stops the stray;"
                  " failed 2 runs in 6, once on a quiet machine")
async def test_a_restarted_agent_is_reconciled_what_died_starts_again_strays_stop(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    spec = ServiceSpec("detect", provider="AGENT",
                       command=(sys.executable, "-c", _STAGE, str(runs)),
                       env={"STAGE_SETTING": "x"}, max_instance=2)
    hot = {"BATTERY": "80", "CHARGING": "true", "THERMAL": "70", "CPU_PERCENT": "10"}
    async with running_fleet(kafka_bootstrap, unique, tmp_path) as fleet:
        provider = AgentProvider({"detect": spec}, fleet.service, start_timeout=60)
        mover = InstanceMover(fleet.service, provider)
        fleet.start_agent("phone", {"BATTERY": "80", "CHARGING": "true", "THERMAL": "normal",
                                   "CPU_PERCENT": "10"})
        fleet.start_agent("desktop", {"THERMAL": "normal", "CPU_PERCENT": "10"})
        await fleet.wait_nodes("phone", "desktop")
        first = await asyncio.to_thread(provider, logging.getLogger("test"),
                                        {"service_name": "detect"})
        assert first.info["node"] == "phone"
        pid = runs / "phone.pid"
        await wait_until(lambda: pid.exists() and pid.read_text(), timeout=60)
        old_pid = int(pid.read_text().split()[0])

        fleet.kill("phone")  # restarted with a raised THERMAL: the instance dies with it
        await wait_until(lambda: not _alive(old_pid), timeout=30)
        fleet.start_agent("phone", hot)
        # The provider starts it again, same id, where the scheduler says: not the hot phone.
        await wait_until(lambda: provider.instances_on("desktop") == [first.instance_id],
                         timeout=90, what="the instance started again on the desktop")
        moved = runs / "desktop.pid"
        await wait_until(lambda: moved.exists() and moved.read_text(), timeout=60)
        assert moved.read_text().split()[1] == first.instance_id
        # A slow restart is heard as a lost node, then a new one: the same for its instances.
        assert fleet.service.nodes.restarts + fleet.service.nodes.lost_total >= 1

        # An instance the desktop was never given (a forged order in the master's
        # name) starts there, shows in its report, and is stopped.
        forger = Producer({"bootstrap.servers": kafka_bootstrap})
        forger.produce(fleet.settings.orders_topic, encode_fleet(InstanceStart(
            "desktop", "forged-1", "detect", command=(sys.executable, "-c", _STAGE,
                                                      str(tmp_path))),
            fleet.settings.master_id))
        assert forger.flush(30) == 0
        await wait_until(lambda: mover.strays_stopped == 1, timeout=60,
                         what="the forged instance seen and stopped")
        await wait_until(lambda: fleet.service.nodes.entries["desktop"].report
                         .running_instances == (first.instance_id,), timeout=60,
                         what="the desktop to run only what it was given")
