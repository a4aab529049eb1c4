"""Fetch the jars of a real Apache Kafka broker from Maven Central, once per machine.

Maven resolves ``org.apache.kafka:kafka_2.13`` and everything it needs at run time;
the log4j 2 binding is added by hand because Kafka's published pom leaves logging to
the application, and without it the broker writes no log line at all.

The jars live in a per-user cache outside the repository so every checkout and every
test session shares one download.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final
from xml.sax.saxutils import escape

from fogverse.errors import BrokerUnavailableError

log = logging.getLogger(__name__)

DEFAULT_KAFKA_VERSION: Final = "4.1.1"
"""Known to start in KRaft combined mode with the settings this package writes."""

ENV_KAFKA_VERSION: Final = "FOGVERSE_KAFKA_VERSION"
ENV_CACHE_DIR: Final = "FOGVERSE_CACHE_DIR"

DEPENDENCY_PLUGIN: Final = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
"""Pinned because Maven 3.8's default (2.8) predates options this relies on."""

MARKER_NAME: Final = ".complete"
MAVEN_TIMEOUT_S: Final = 900.0

INSTALL_HINT: Final = (
    "Install a Java 17+ JDK and Apache Maven "
    "(e.g. `apt-get install openjdk-17-jdk-headless maven`), "
    "or run Kafka yourself with `docker compose up` (the repository's docker-compose.yml), "
    "or point FOGVERSE_BOOTSTRAP=host:port at an existing cluster."
)


def kafka_version(version: str | None = None) -> str:
    """The Kafka version to use: the argument, else $FOGVERSE_KAFKA_VERSION, else the default."""
    return version or os.environ.get(ENV_KAFKA_VERSION) or DEFAULT_KAFKA_VERSION


def log4j_version(kafka: str) -> str:
    """The log4j 2 release Kafka itself was built against (its gradle/dependencies.gradle)."""
    major_minor = tuple(int(p) for p in kafka.split(".")[:2] if p.isdigit())
    return "2.25.3" if major_minor >= (4, 2) else "2.24.3"


def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return cache_dir
    if env := os.environ.get(ENV_CACHE_DIR):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fogverse"


def require_tools(*names: str) -> dict[str, str]:
    """Absolute paths of the named programs, or one error naming every missing one."""
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise BrokerUnavailableError(
            f"cannot start the embedded Kafka broker: {' and '.join(missing)} not found on PATH",
            hint=INSTALL_HINT,
        )
    return {name: path for name, path in found.items() if path is not None}


def ensure_kafka_jars(version: str | None = None, cache_dir: Path | None = None) -> Path:
    """Return a directory holding every jar a Kafka broker of ``version`` needs.

    ``version`` defaults to $FOGVERSE_KAFKA_VERSION, else ``DEFAULT_KAFKA_VERSION``.
    The result is ``<cache>/kafka-<version>/lib`` where ``<cache>`` is ``cache_dir``,
    else $FOGVERSE_CACHE_DIR, else ``~/.cache/fogverse``. The first call downloads with
    Maven; later calls (from any process) return at once. Safe to call concurrently.

    Raises BrokerUnavailableError when Maven or Java is missing or the download fails.
    """
    version = kafka_version(version)
    home = cache_root(cache_dir) / f"kafka-{version}"
    lib = home / "lib"
    if _is_complete(home):
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with _exclusive(home.parent / f"kafka-{version}.lock"):
        # Another process may have finished while this one waited for the lock.
        if not _is_complete(home):
            _download(version, home)
    return lib


def _is_complete(home: Path) -> bool:
    return (home / MARKER_NAME).is_file() and (home / "lib").is_dir()


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(version: str, home: Path) -> None:
    tools = require_tools("mvn", "java")
    log.info("downloading Kafka %s jars with Maven into %s (first time only)", version, home)
    (home / MARKER_NAME).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="fogverse-mvn-") as tmp:
        staging = Path(tmp) / "lib"
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_pom(version, log4j_version(version)), encoding="utf-8")
        _run_maven(tools["mvn"], pom, staging, version)
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if not any(name.startswith("kafka_2.13-") for name in jars):
            raise BrokerUnavailableError(
                f"Maven finished but no kafka_2.13 jar arrived in {staging}. " + INSTALL_HINT
            )
        # Replace any half-finished earlier attempt wholesale so no stale jar lingers.
        shutil.rmtree(home / "lib", ignore_errors=True)
        shutil.move(str(staging), home / "lib")
    (home / MARKER_NAME).write_text("\n".join(jars) + "\n", encoding="utf-8")


def _run_maven(mvn: str, pom: Path, out_dir: Path, version: str) -> None:
    cmd = [
        mvn,
        "--batch-mode",
        "--no-transfer-progress",
        "-f",
        str(pom),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={out_dir}",
    ]
    try:
        done = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerUnavailableError(
            f"Maven took longer than {MAVEN_TIMEOUT_S:.0f}s to fetch Kafka {version}; "
            "is Maven Central reachable?"
        ) from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise BrokerUnavailableError(
            f"Maven could not fetch Kafka {version} (exit {done.returncode}); "
            f"is Maven Central reachable and does the version exist?\n{tail}"
        )


def _pom(kafka: str, log4j: str) -> str:
    deps = [
        ("org.apache.kafka", "kafka_2.13", kafka),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", log4j),
        ("org.apache.logging.log4j", "log4j-core", log4j),
        ("org.apache.logging.log4j", "log4j-api", log4j),
    ]
    rendered = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version></dependency>".format(*map(escape, dep))
        for dep in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.fogverse.throwaway</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>{escape(kafka)}</version>
  <packaging>pom</packaging>
  <dependencies>
{rendered}
  </dependencies>
</project>
"""
