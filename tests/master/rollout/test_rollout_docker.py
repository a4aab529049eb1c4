"""A DOCKER service rolled out to another tag of its image, on a live engine.

Blue-green under a steady feed: the new container (the image re-tagged, the
version named by the tag) starts beside the old one, is watched, and only then
is the old container stopped. The output switches to the new version and no
message is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rollout_helpers import VersionSink, accounted

from fogverse.admin import KafkaAdmin
from fogverse.constants import LABEL_MASTER_ID, LABEL_VERSION
from master import Master, master_settings
from master.rollout import Phase
from tests.master.master_helpers import FeederThread
from tests.polling import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TAG = "rollout-v2"


@pytest.fixture
def tagged(docker_client: Any, stage_image: str) -> Iterator[str]:
    """The stage image under a second tag: the version to roll out to."""
    repo = stage_image.rpartition(":")[0]
    docker_client.images.get(stage_image).tag(repo, TAG)
    yield f"{repo}:{TAG}"
    docker_client.images.remove(f"{repo}:{TAG}")


async def test_a_docker_service_rolls_out_to_another_image_tag_losing_nothing(
    kafka_bootstrap: str, docker_client: Any, stage_image: str, tagged: str,
    unique: Callable[[str], str],
) -> None:
    control, source, target, group = (unique(p) for p in ("control", "in", "out", "pass"))
    master_id = unique("docker-rollout")
    admin = KafkaAdmin(kafka_bootstrap)
    await admin.ensure_topic(source, 1)
    await admin.ensure_topic(target, 1)
    master = Master(master_settings({
        "consumer_topic": control, "consumer_servers": kafka_bootstrap,
        "consumer_group_id": master_id, "http_port": None, "state_topic": "",
        "included_worker": ["AUTO_DEPLOYER"],
        "auto_deployer_config": {"deploy_delay": 1, "after_heartbeat_delay": 1},
        "rollout_config": {"health_window": 2, "min_sample": 10},
        "services": {"pass": {
            "provider": "DOCKER", "module": "examples.rollout.stage", "min_instance": 1,
            "max_instance": 1, "source_topic": source, "target_topic": target,
            "group_id": group,
            "env": {"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": group,
                    "CONTROL_TOPIC": control},
            "extra_configs": {"image": stage_image, "network": "host", "memory": "300m"},
        }},
    }))
    out = VersionSink(kafka_bootstrap, target, unique("sink"))
    feeder: FeederThread | None = None
    assert master.rollouts is not None
    rollouts = master.rollouts.rollouts
    try:
        await master.start()
        await wait_until(lambda: master.registry.live_count((source, target)) == 1,
                         timeout=120, what="the first container heartbeating")
        feeder = FeederThread(50, producer_topic=source, consumer_servers=kafka_bootstrap,
                              control_topic=control)
        master.rollout("pass", TAG, "blue-green")
        await wait_until(lambda: not rollouts["pass"].active, timeout=180,
                         what="the blue-green rollout to settle")
        assert rollouts["pass"].phase is Phase.DONE, rollouts["pass"].history
        done = time.time()
        await wait_until(lambda: TAG in out.versions_sent_after(done + 0.5), timeout=60,
                         what="output of the new tag")
        assert out.versions_sent_after(done) == {TAG}
        running = docker_client.containers.list(
            filters={"label": [f"{LABEL_MASTER_ID}={master_id}"]})
        assert [(c.labels[LABEL_VERSION], c.attrs["Config"]["Image"]) for c in running] == \
            [(TAG, tagged)]

        total = feeder.stop()
        feeder = None
        await wait_until(lambda: not accounted(total, out), timeout=90,
                         what="every message delivered")
    finally:
        if feeder is not None:
            feeder.stop()
        await master.close()
        out.close()
        admin.close()
        for container in docker_client.containers.list(
                all=True, filters={"label": [f"{LABEL_MASTER_ID}={master_id}"]}):
            container.remove(force=True)
