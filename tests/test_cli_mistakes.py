"""A user's mistakes, made on the real ``fogverse`` command in a subprocess.

Each must end in one line saying what is wrong, one line saying what to do,
exit status 2, and no traceback. (A missing Java is in tests/broker/test_broker_jars.py.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FOGVERSE_MASTER_URL"}
    return subprocess.run([sys.executable, "-m", "fogverse", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT, env=env)


def said(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """The error line and the hint, once the command failed as a user's mistake."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert [line for line in lines if line.startswith(("fogverse: ", "hint: "))] == lines[-2:]
    error, hint = lines[-2:]
    assert error.startswith("fogverse: ") and hint.startswith("hint: ")
    return error, hint


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_misspelt_key_in_the_config_file_is_named_with_the_right_one(tmp_path: Path) -> None:
    config = tmp_path / "master.toml"
    config.write_text('consumer_topic = "control"\nhttp_prot = 4280\n')
    error, hint = said(run_cli("master", "--config", str(config)))
    assert "http_prot" in error and "unknown key" in error
    assert "did you mean 'http_port'?" in hint


def test_an_unknown_provider_is_named_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "master.toml"
    config.write_text('consumer_topic = "control"\nhttp_port = 0\n'
                      '[services.slow]\nprovider = "LOCALL"\nmodule = "m"\n')
    error, hint = said(run_cli("master", "--config", str(config), "--bootstrap", "127.0.0.1:1"))
    assert "services.slow.provider='LOCALL'" in error and "unknown provider" in error
    assert "LOCAL" in hint and "set_deploy_functions" in hint


def test_an_unreachable_broker_is_reported_after_a_short_try() -> None:
    error, hint = said(run_cli("master", "--bootstrap", "127.0.0.1:1", "--http-port", "0"))
    assert "no Kafka broker answered at 127.0.0.1:1" in error
    assert "fogverse broker" in hint


def test_a_port_in_use_is_named_with_its_setting(busy_port: int) -> None:
    error, hint = said(run_cli("broker", "--port", str(busy_port)))
    assert f"--port={busy_port}" in error and "already in use" in error
    assert "another port" in hint


def test_a_master_that_does_not_answer_is_reported() -> None:
    error, hint = said(run_cli("status", "--url", "http://127.0.0.1:1"))
    assert "no master status at http://127.0.0.1:1/status" in error
    assert "fogverse master" in hint
