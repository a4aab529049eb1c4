"""The master's own blindness (no control message at all) is not every instance dying.

Pure: the master is built but not started; messages and ticks get their time by hand.
"""

from __future__ import annotations

import time

from fogverse.control import Heartbeat, encode_control
from master import Master, Worker, master_settings


def _beat(instance_id: str) -> bytes:
    hb = Heartbeat(instance_id=instance_id, service_name="svc", source_topic="in",
                   target_topic="out", consumed=0, produced=0, interval=1.0)
    return encode_control(hb, instance_id)


async def test_a_gap_in_all_control_messages_expires_no_instance() -> None:
    settings = master_settings({"included_worker": [Worker.STATISTIC_WORKER]},
                               env={"FOGVERSE_BOOTSTRAP": "127.0.0.1:1"})
    master = Master(settings)
    for t in (0.0, 1.0, 2.0):
        for name in ("a", "b", "c"):
            master.handle_raw(_beat(name), t, time.time())
    await master.tick(4.0)   # nothing at all for 2 s: nobody is past a deadline yet
    await master.tick(8.0)   # nothing at all for 6 s: the master may be blind
    assert len(master.registry) == 3
    for name in ("a", "b", "c"):
        master.handle_raw(_beat(name), 8.5, time.time())
    await master.tick(9.0)
    assert len(master.registry) == 3
