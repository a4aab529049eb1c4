"""How long a restarted Master takes to restore 10,000 records from its state topic.

The state topic holds 10,000 signed plan records (one per stage, as many
requested stages as a large deployment has). ``restore_s`` is the wall time of
``await master.start()`` until it manages all of them: read to the end, every
record's signature and fields checked, each plan held to the config again.
Baselines in the same run: a raw confluent-kafka consumer reading the same
topic to its end without decoding anything (``raw_read_s``, the floor), and the
same master starting on an empty state topic (``empty_start_s``).

    python -m bench.state_restore      # uses $FOGVERSE_BOOTSTRAP or starts a broker
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench._common import broker, create_topics, emit, fresh
from master import Master, master_settings
from master.plans import StagePlan
from master.state_records import encode_record, plan_body

RECORDS = 10_000
KEY = b"bench-key"


def fill(servers: str, topic: str, namespace: str) -> None:
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 20})
    for i in range(RECORDS):
        plan = StagePlan((f"in-{i}", "out"), "svc", "REC", 0, 4)
        key = f"{namespace}/in-{i}->out"
        while True:
            try:
                producer.produce(topic, encode_record(key, "plan", plan_body(plan), KEY),
                                 key.encode())
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def raw_read(servers: str, topic: str) -> float:
    started = time.perf_counter()
    consumer = Consumer({"bootstrap.servers": servers, "group.id": fresh("raw"),
                         "enable.auto.commit": False})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    seen = 0
    while seen < high:
        seen += sum(1 for m in consumer.consume(500, 0.5) if m.error() is None)
    consumer.close()
    return time.perf_counter() - started


async def start_master(servers: str, state_topic: str, namespace: str) -> tuple[float, int]:
    master = Master(master_settings({
        "consumer_topic": fresh("control"), "consumer_servers": servers,
        "consumer_group_id": namespace, "http_port": None, "state_topic": state_topic,
        "included_worker": ["AUTO_DEPLOYER"], "control_key": KEY.decode(),
        "max_plans": RECORDS, "services": {"svc": {"provider": "REC", "max_instance": 4,
                                                   "min_instance": 0}},
    }))
    master.deploy_scripts.set_deploy_functions("REC", lambda logger, config: None)
    started = time.perf_counter()
    await master.start()
    took = time.perf_counter() - started
    assert master.deployer is not None
    managed = len(master.deployer.stages())
    await master.close()
    return took, managed


def main() -> None:
    logging.getLogger("fogverse").setLevel(logging.WARNING)
    with broker() as servers:
        topic, namespace = fresh("state"), fresh("master")
        create_topics(servers, topic)
        empty_s, _ = asyncio.run(start_master(servers, fresh("state"), fresh("master")))
        fill(servers, topic, namespace)
        raw_s = raw_read(servers, topic)
        restore_s, managed = asyncio.run(start_master(servers, topic, namespace))
    print(f"restored {managed} of {RECORDS} plans in {restore_s:.2f}s (start on an empty "
          f"state topic {empty_s:.2f}s; raw read of the records {raw_s:.2f}s)", flush=True)
    result: dict[str, Any] = {
        "bench": "state_restore", "records": RECORDS, "restored": managed,
        "restore_s": round(restore_s, 3), "target_s": 2.0,
        "empty_start_s": round(empty_s, 3), "raw_read_s": round(raw_s, 3),
        "restore_vs_raw": round(restore_s / max(raw_s, 1e-6), 2),
    }
    emit(result)


if __name__ == "__main__":
    main()
