"""The test broker in a container (``FOGVERSE_TEST_KAFKA=container``), through testcontainers.

The image is built locally from the same Maven jars the embedded broker runs
(``deploy_scripts.docker_images.build_kafka_image``) on the Debian base with a JRE,
and given exactly the embedded broker's settings, so the suite proves the same
things on either. The container shares the host's network: the broker listens on
a free loopback port, as the embedded one does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fogverse.broker.kafka_node import free_ports, new_cluster_id, server_properties
from fogverse.errors import BrokerUnavailableError
from tests.docker_engine import docker_client_or_skip, docker_env

ENV_TEST_KAFKA = "FOGVERSE_TEST_KAFKA"
STARTUP_TIMEOUT_S = 120.0
_ENV_SPELLING = {".": "_", "_": "__", "-": "___"}


def wants_container() -> bool:
    return os.environ.get(ENV_TEST_KAFKA, "").strip().lower() == "container"


def env_name(key: str) -> str:
    """``foo.bar_baz-x`` -> ``KAFKA_FOO_BAR__BAZ___X``: the image's (and apache/kafka's) naming."""
    return "KAFKA_" + "".join(_ENV_SPELLING.get(ch, ch) for ch in key).upper()


def _kafka_image(client: object) -> str:
    from deploy_scripts.docker_images import ENV_KAFKA_IMAGE, build_kafka_image
    from fogverse.broker import ensure_kafka_jars

    image = os.environ.get(ENV_KAFKA_IMAGE)
    if image:
        return image
    return build_kafka_image(client, docker_env()["FOGVERSE_DOCKER_BASE"],
                             jars=ensure_kafka_jars())  # fmt: skip


@contextmanager
def kafka_in_container() -> Iterator[str]:
    """Start the broker container, wait until a client is served, yield its bootstrap."""
    from confluent_kafka.admin import AdminClient
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    client = docker_client_or_skip()
    try:
        image = _kafka_image(client)
    finally:
        client.close()
    port, controller = free_ports(2)
    props = server_properties(port, controller, Path("/var/lib/kafka"), {})
    ready = LogMessageWaitStrategy(re.compile(r"Kafka Server started"))
    container = (
        DockerContainer(image)
        .with_kwargs(network_mode="host")
        .with_env("CLUSTER_ID", new_cluster_id())
        .with_envs(**{env_name(k): v for k, v in props.items()})
        .waiting_for(ready.with_startup_timeout(STARTUP_TIMEOUT_S))
    )
    try:
        container.start()
    except Exception as exc:
        container.stop()
        raise BrokerUnavailableError(f"Kafka container from {image} did not start: {exc}") from exc
    bootstrap = f"127.0.0.1:{port}"
    try:
        # The log line says the broker started; a metadata answer says it serves clients.
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30)
        yield bootstrap
    finally:
        container.stop()
