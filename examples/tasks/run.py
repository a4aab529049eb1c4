"""Tasks on node agents: a Master runs the fleet, three devices run what it places on them.

Starts a broker (or uses ``FOGVERSE_BOOTSTRAP``), a Master with its fleet on,
three ``fogverse agent`` processes (a desktop, a charging phone, a phone at
15 %) loading ``examples.tasks.handlers``, submits tasks with
:class:`fogverse.TaskClient` and prints where each ran. The phone at 15 % gets
none: under the battery minimum and not charging. The last line is JSON.

    python -m examples.tasks.run [--tasks N]

The same by hand: ``fogverse master --config examples/tasks/master.toml``,
``fogverse agent --handlers examples.tasks.handlers:HANDLERS ...`` on each device,
then ``fogverse task submit count_primes --payload '{"below": 100000}' --wait 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from examples.demo.devices import DEVICES, start_agents, stop_agents
from examples.demo.settings import Names
from fogverse import TaskClient
from fogverse.broker import kafka_bootstrap
from master import Master, master_settings

HANDLERS = "examples.tasks.handlers:HANDLERS"


async def wait_for_devices(master: Master, timeout: float) -> None:
    assert master.fleet is not None
    nodes = master.fleet.service.nodes.entries
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(d.node_id in nodes for d in DEVICES):
        if loop.time() > deadline:
            raise TimeoutError(f"devices did not report within {timeout:g}s")
        await asyncio.sleep(0.2)


async def run(servers: str, tasks: int, log_dir: Path) -> dict[str, Any]:
    names = Names.fresh()  # topics of this run only, so it can share a broker
    master = Master(master_settings({
        "consumer_topic": names.control, "consumer_servers": servers,
        "consumer_group_id": f"{names.master_id}-master", "state_topic": names.state,
        "http_port": None, "included_worker": [],
        "fleet_config": {"enabled": True, "master_id": names.master_id,
                         "nodes_topic": names.nodes, "orders_topic": names.orders,
                         "tasks_topic": names.tasks, "status_topic": names.status},
    }))
    agents = start_agents(servers, names.master_id, names.nodes, names.orders, log_dir,
                          handlers=HANDLERS)
    client = TaskClient(servers, tasks_topic=names.tasks, status_topic=names.status)
    try:
        await master.start()
        await asyncio.to_thread(client.start)
        # A task no reporting node has a handler for fails at once: wait for the devices.
        await wait_for_devices(master, timeout=90)
        ids = [client.submit_task("count_primes", {"below": 20_000 * (n + 1)}, cpu=0.5)
               for n in range(tasks)]
        ids.append(client.submit_task("word_count", {"text": __doc__}, priority=7))
        done = await asyncio.gather(*(client.result(i, timeout=120) for i in ids))
    finally:
        await asyncio.to_thread(client.close)
        await master.close()
        await asyncio.to_thread(stop_agents, agents)
    for status in done:
        outcome = json.dumps(status.result) if status.error is None else status.error
        print(f"{status.task_type:<12} {status.state:<9} on {status.node_id or '-':<15} "
              f"{outcome}")
    return {
        "completed": sum(1 for s in done if s.state == "completed"),
        "submitted": len(ids),
        "by_node": dict(Counter(s.node_id for s in done)),
        "primes": [s.result["primes"] for s in done
                   if s.task_type == "count_primes" and s.state == "completed"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    print("devices: " + "; ".join(f"{d.node_id} ({d.label})" for d in DEVICES), flush=True)
    with kafka_bootstrap() as servers:
        summary = asyncio.run(run(servers, args.tasks,
                                  Path(tempfile.mkdtemp(prefix="fogverse-tasks-"))))
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["completed"] == summary["submitted"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
