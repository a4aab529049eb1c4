"""Runtime tests that take ``client`` run once per Kafka client backend.

The backend is chosen the way a deployment chooses it, through
``FOGVERSE_CLIENT``, so stages, their heartbeats and child processes started
with the environment all use it.
"""

from __future__ import annotations

import pytest

from fogverse.constants import CLIENTS, ENV_CLIENT


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = str(request.param)
    monkeypatch.setenv(ENV_CLIENT, name)
    return name
