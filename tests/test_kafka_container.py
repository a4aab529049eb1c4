"""The ``FOGVERSE_TEST_KAFKA=container`` route: the suite's broker really is a container.

scripts/test.sh runs this file with the broker smoke tests on that route; in the
ordinary run (embedded or external broker) it has nothing to check and skips.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.kafka_container import env_name, wants_container


@pytest.mark.parametrize(
    ("key", "name"),
    [("node.id", "KAFKA_NODE_ID"),
     ("group.consumer.min.session.timeout.ms", "KAFKA_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS"),
     ("a_b.c-d", "KAFKA_A__B_C___D")],
)
def test_settings_are_named_the_way_the_image_reads_them(key: str, name: str) -> None:
    assert env_name(key) == name


def test_the_broker_on_the_container_route_runs_in_a_container(
    kafka_bootstrap: str, docker_client: Any
) -> None:
    if not wants_container():
        pytest.skip("FOGVERSE_TEST_KAFKA is not 'container': the broker is not ours to check")
    listener = f"PLAINTEXT://{kafka_bootstrap}"
    serving = [
        c for c in docker_client.containers.list()
        if any(e.startswith("KAFKA_LISTENERS=") and listener in e
               for e in c.attrs["Config"]["Env"])
    ]  # fmt: skip
    assert len(serving) == 1, f"no running container listens on {kafka_bootstrap}"
    assert serving[0].image.tags and serving[0].image.tags[0].startswith("fogverse-kafka:")
