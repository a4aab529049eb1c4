"""Fetching the broker's jars: one clear error without Java or Maven, one download per cache.

A stand-in ``mvn`` on PATH plays Maven here so these tests need no network; the real
download is exercised by scripts/bootstrap.sh and by every Kafka test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fogverse.broker import EmbeddedBroker
from fogverse.broker.jars import ENV_KAFKA_VERSION, ensure_kafka_jars, log4j_version
from fogverse.errors import BrokerUnavailableError

# Writes the kafka jar Maven would copy, and notes each run so tests can count them.
FAKE_MVN = """#!{python}
import os, sys, time
from pathlib import Path
out = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("-DoutputDirectory="))
pom = Path(sys.argv[sys.argv.index("-f") + 1]).read_text()
version = pom.split("<artifactId>kafka_2.13</artifactId><version>")[1].split("<")[0]
with open(os.environ["FAKE_MVN_RUNS"], "a") as runs:
    runs.write(version + "\\n")
if os.environ.get("FAKE_MVN_FAIL"):
    print("[ERROR] Could not resolve dependencies: Network is unreachable")
    sys.exit(1)
time.sleep(float(os.environ.get("FAKE_MVN_DELAY", "0")))
Path(out).mkdir(parents=True, exist_ok=True)
Path(out, f"kafka_2.13-{{version}}.jar").write_bytes(b"PK")
"""


def _tool(bin_dir: Path, name: str, text: str) -> None:
    path = bin_dir / name
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "empty-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


@pytest.fixture
def fake_maven(empty_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only a stand-in java and mvn; returns the file listing mvn's runs."""
    _tool(empty_path, "java", "#!/bin/sh\nexit 0\n")
    _tool(empty_path, "mvn", FAKE_MVN.format(python=sys.executable))
    runs = tmp_path / "mvn-runs"
    monkeypatch.setenv("FAKE_MVN_RUNS", str(runs))
    return runs


def _runs(runs: Path) -> list[str]:
    return runs.read_text().split() if runs.exists() else []


def _assert_says_what_to_install(message: str) -> None:
    assert "Java 17" in message
    assert "Maven" in message
    assert "apt-get install openjdk-17-jdk-headless maven" in message
    assert "docker compose up" in message
    assert "FOGVERSE_BOOTSTRAP=host:port" in message


def test_missing_java_names_what_to_install_and_the_alternatives(empty_path: Path) -> None:
    with pytest.raises(BrokerUnavailableError) as caught:
        EmbeddedBroker().start()
    assert "java not found on PATH" in str(caught.value)
    _assert_says_what_to_install(str(caught.value.hint))


def test_missing_maven_on_first_download_is_named(empty_path: Path, tmp_path: Path) -> None:
    _tool(empty_path, "java", "#!/bin/sh\nexit 0\n")
    with pytest.raises(BrokerUnavailableError) as caught:
        ensure_kafka_jars("4.1.1", tmp_path / "cache")
    assert "mvn not found" in str(caught.value)
    _assert_says_what_to_install(str(caught.value.hint))


def test_cli_without_java_prints_the_hint_and_fails(empty_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fogverse", "broker"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(empty_path)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    error, hint = done.stderr.splitlines()
    assert error.startswith("fogverse: ") and "java not found on PATH" in error
    assert hint.startswith("hint: ")
    _assert_says_what_to_install(hint)


def test_jars_are_fetched_once_then_served_from_the_cache(fake_maven: Path, tmp_path: Path) -> None:
    first = ensure_kafka_jars("4.1.1", tmp_path / "cache")
    again = ensure_kafka_jars("4.1.1", tmp_path / "cache")
    assert first == again == tmp_path / "cache" / "kafka-4.1.1" / "lib"
    assert (first / "kafka_2.13-4.1.1.jar").is_file()
    assert _runs(fake_maven) == ["4.1.1"]


def test_concurrent_callers_share_one_download(
    fake_maven: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_DELAY", "1")  # keeps the first download in flight
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_kafka_jars("4.1.1", tmp_path)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert _runs(fake_maven) == ["4.1.1"]


def test_a_failed_download_says_why_and_is_retried_next_time(
    fake_maven: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_FAIL", "1")
    with pytest.raises(BrokerUnavailableError, match="Network is unreachable"):
        ensure_kafka_jars("4.1.1", tmp_path)
    monkeypatch.delenv("FAKE_MVN_FAIL")
    lib = ensure_kafka_jars("4.1.1", tmp_path)
    assert (lib / "kafka_2.13-4.1.1.jar").is_file()
    assert _runs(fake_maven) == ["4.1.1", "4.1.1"]


def test_a_half_finished_cache_is_replaced(fake_maven: Path, tmp_path: Path) -> None:
    stale = tmp_path / "kafka-4.1.1" / "lib"
    stale.mkdir(parents=True)
    (stale / "truncated.jar").write_bytes(b"")
    lib = ensure_kafka_jars("4.1.1", tmp_path)
    assert sorted(p.name for p in lib.iterdir()) == ["kafka_2.13-4.1.1.jar"]


def test_version_comes_from_the_environment_when_not_given(
    fake_maven: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_KAFKA_VERSION, "4.0.1")
    lib = ensure_kafka_jars(cache_dir=tmp_path)
    assert lib == tmp_path / "kafka-4.0.1" / "lib"
    assert _runs(fake_maven) == ["4.0.1"]


@pytest.mark.parametrize(
    ("kafka", "log4j"),
    [("4.0.0", "2.24.3"), ("4.1.1", "2.24.3"), ("4.2.0", "2.25.3"), ("4.3.1", "2.25.3")],
)
def test_log4j_matches_the_kafka_release(kafka: str, log4j: str) -> None:
    assert log4j_version(kafka) == log4j
