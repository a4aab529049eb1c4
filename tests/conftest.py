"""Session fixtures: one real Kafka broker for the whole run, and names that never clash.

``kafka_bootstrap`` is ``$FOGVERSE_BOOTSTRAP`` when set, else the address of one
embedded broker started on first use; ``FOGVERSE_TEST_KAFKA=container`` puts that
broker in a container instead (tests/kafka_container.py). Every test that needs it,
directly or through another fixture, is marked ``kafka`` here at collection
(``kafka_jars`` too), so ``pytest -m "not kafka"`` runs without Java and no test has
to remember the marker; tests on a live Docker engine are marked ``docker`` likewise,
and those in a headless browser ``browser``.
When no broker can be started the Kafka tests are skipped on a developer's machine
but fail when ``$CI`` is set, so a CI run can never pass by skipping them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from fogverse.broker import EmbeddedBroker, ensure_kafka_jars
from fogverse.broker.jars import require_tools
from fogverse.constants import CLIENTS, ENV_BOOTSTRAP, ENV_CLIENT
from fogverse.errors import BrokerUnavailableError
from tests.browser import BROWSER_FIXTURES, chromium
from tests.docker_engine import DOCKER_FIXTURES, docker_client, kafka_image, stage_image
from tests.kafka_container import kafka_in_container, wants_container

TOPIC_READY_TIMEOUT_S = 30.0

# The live-engine fixtures, and the headless browser's.
__all__ = ["chromium", "docker_client", "kafka_image", "stage_image"]


BROKER_FIXTURES = frozenset({"kafka_bootstrap", "kafka_jars"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if BROKER_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.kafka)
        if DOCKER_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.docker)
        if BROWSER_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.browser)


def skip_or_fail(exc: BrokerUnavailableError) -> NoReturn:
    """Skip on a developer's machine; fail under CI, where a skip would hide a broken set-up."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and no Kafka broker could be started: {exc}", pytrace=False)
    pytest.skip(f"no Kafka broker: {exc}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if wants_container():  # FOGVERSE_TEST_KAFKA=container: the broker in a container
        try:
            with kafka_in_container() as bootstrap:
                yield bootstrap
        except BrokerUnavailableError as exc:
            skip_or_fail(exc)
        return
    external = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if external:
        yield external
        return
    broker = EmbeddedBroker()
    try:
        broker.start()
    except BrokerUnavailableError as exc:
        skip_or_fail(exc)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_jars() -> Path:
    """For tests that start brokers of their own: Java is there and the jars are cached."""
    try:
        require_tools("java")
        return ensure_kafka_jars()
    except BrokerUnavailableError as exc:
        skip_or_fail(exc)


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per Kafka client backend, chosen as a deployment chooses it
    (``FOGVERSE_CLIENT``): stages, heartbeats, agents and child processes that
    inherit the environment all use it."""
    name = str(request.param)
    monkeypatch.setenv(ENV_CLIENT, name)
    return name


@pytest.fixture
def unique() -> Callable[[str], str]:
    """``unique("orders")`` -> ``"orders-1f3a9c0b2e"``: a fresh topic or group name.

    Dashes only: Kafka warns when '.' and '_' are mixed, and the project uses '-'.
    """

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture(scope="session")
def admin(kafka_bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


def create_topic(
    admin: Any,
    name: str,
    partitions: int = 1,
    *,
    config: Mapping[str, str] | None = None,
    timeout: float = TOPIC_READY_TIMEOUT_S,
) -> str:
    """Create ``name`` and return once every partition has a leader."""
    # The documented import path; the package's stubs forget to re-export it.
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    spec = NewTopic(
        name, num_partitions=partitions, replication_factor=1, config=dict(config or {})
    )
    admin.create_topics([spec], operation_timeout=timeout)[name].result(timeout)
    wait_for_topic(admin, name, partitions, timeout=timeout)
    return name


def wait_for_topic(
    admin: Any, name: str, partitions: int = 1, *, timeout: float = TOPIC_READY_TIMEOUT_S
) -> None:
    """Wait until ``name`` has at least ``partitions`` partitions, each with a leader."""
    deadline = time.monotonic() + timeout
    while True:
        topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if topic is not None and topic.error is None and _all_led(topic, partitions):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} not ready with {partitions} partitions")
        time.sleep(0.1)


def _all_led(topic: Any, partitions: int) -> bool:
    parts = topic.partitions.values()
    return len(parts) >= partitions and all(p.error is None and p.leader >= 0 for p in parts)


@pytest.fixture
def make_topic(admin: Any, unique: Callable[[str], str]) -> Callable[..., str]:
    """``make_topic("orders", partitions=3)`` creates a fresh, ready topic and returns its name.

    ``name=`` creates exactly that topic instead of a fresh one.
    """

    def make(
        prefix: str = "topic",
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
    ) -> str:
        return create_topic(admin, name or unique(prefix), partitions, config=config)

    return make
