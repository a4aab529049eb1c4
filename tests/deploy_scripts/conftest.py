"""Fixtures for the deploy tests: a report directory and providers that clean up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from deploy_scripts import LocalProvider, ServiceSpec


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    path = tmp_path / "reports"
    path.mkdir()
    return path


@pytest_asyncio.fixture(loop_scope="function")
async def make_provider(tmp_path: Path) -> AsyncIterator[Callable[..., LocalProvider]]:
    """Build LocalProviders whose children are all stopped when the test ends."""
    made: list[LocalProvider] = []

    def make(services: dict[str, ServiceSpec], **kwargs: Any) -> LocalProvider:
        kwargs.setdefault("log_dir", tmp_path / "logs")
        provider = LocalProvider(services, **kwargs)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.stop_all()
