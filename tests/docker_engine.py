"""A live Docker engine and the project's images, for the tests that need them.

``docker_env()`` runs ``scripts/docker-env.sh`` (the same script CI and developers
use; it starts a private engine and builds the base image when needed) unless the
environment already names an engine. When no engine can be had the tests that use
these fixtures skip with the reason, and fail under ``$CI``, where a skip would hide
a broken set-up (as the Kafka fixture does).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKER_FIXTURES = frozenset({"docker_client", "stage_image", "kafka_image"})


class DockerUnavailable(Exception):
    pass


def skip_or_fail_docker(why: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and no Docker engine could be used: {why}", pytrace=False)
    pytest.skip(f"no Docker engine: {why}")


@functools.cache
def docker_env() -> dict[str, str]:
    """DOCKER_HOST and FOGVERSE_DOCKER_BASE, from the environment or the set-up script."""
    from deploy_scripts.docker_images import engine_environment
    from deploy_scripts.errors import DeployError

    try:
        return engine_environment(ROOT)
    except DeployError as exc:
        raise DockerUnavailable(str(exc)) from None


def docker_client_or_skip() -> Any:
    try:
        docker_env()
        import docker

        client = docker.from_env()
        client.ping()
    except DockerUnavailable as exc:
        skip_or_fail_docker(str(exc))
    except Exception as exc:  # the SDK's errors, or the SDK missing
        skip_or_fail_docker(f"{type(exc).__name__}: {exc}")
    return client


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    client = docker_client_or_skip()
    yield client
    client.close()


@pytest.fixture(scope="session")
def stage_image(docker_client: Any) -> str:
    """The stage image on the local base, with the tests' own stage apps in /app."""
    from deploy_scripts.docker_images import build_stage_image

    apps = ROOT / "tests" / "deploy_scripts" / "container_apps"
    files = {f"container_apps/{p.name}": p for p in sorted(apps.glob("*.py"))}
    return build_stage_image(docker_client, docker_env()["FOGVERSE_DOCKER_BASE"],
                             app_files=files)  # fmt: skip


@pytest.fixture(scope="session")
def kafka_image(docker_client: Any) -> str:
    from deploy_scripts.docker_images import build_kafka_image
    from fogverse.broker import ensure_kafka_jars

    return build_kafka_image(docker_client, docker_env()["FOGVERSE_DOCKER_BASE"],
                             jars=ensure_kafka_jars())  # fmt: skip
