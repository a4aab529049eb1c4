"""DeployScripts: FogVerse's registry, with deploy functions kept off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from deploy_scripts import (
    DeployConfig,
    DeployError,
    DeployResult,
    DeployScripts,
    UnknownProviderError,
)
from fogverse.errors import FogVerseError

CONFIG: DeployConfig = {"provider": "TEST", "service_name": "svc", "max_instance": 2}


def test_unknown_provider_error_names_the_provider_and_the_known_ones() -> None:
    scripts = DeployScripts()
    scripts.set_deploy_functions("LOCAL", lambda logger, config: None)
    scripts.set_deploy_functions("DOCKER", lambda logger, config: None)
    with pytest.raises(UnknownProviderError) as caught:
        scripts.get_deploy_functions("GOOGLE_CLOUD")
    text = str(caught.value)
    assert "'GOOGLE_CLOUD'" in text
    assert "DOCKER, LOCAL" in text
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, FogVerseError)


async def test_deploy_with_unregistered_provider_says_none_are_registered() -> None:
    with pytest.raises(UnknownProviderError, match="'TEST'; known providers: none"):
        await DeployScripts().deploy(CONFIG)


def test_providers_lists_registered_names_and_set_replaces() -> None:
    scripts = DeployScripts()
    first = lambda logger, config: None  # noqa: E731
    second = lambda logger, config: None  # noqa: E731
    scripts.set_deploy_functions("LOCAL", first)
    scripts.set_deploy_functions("EDGE", first)
    scripts.set_deploy_functions("LOCAL", second)
    assert scripts.providers == ["EDGE", "LOCAL"]
    assert scripts.get_deploy_functions("LOCAL") is second


async def test_blocking_deploy_function_runs_off_the_event_loop() -> None:
    # The function blocks until the loop sets the event: on the loop's own
    # thread this could never finish.
    loop_ran = threading.Event()
    seen: dict[str, Any] = {}

    def blocking(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        seen["thread"] = threading.current_thread()
        seen["config"] = config
        assert loop_ran.wait(timeout=30), "the event loop was blocked"
        return DeployResult("svc-1", stop=lambda: None)

    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", blocking)
    task = asyncio.create_task(scripts.deploy(CONFIG))
    await asyncio.sleep(0)
    loop_ran.set()
    result = await task
    assert result is not None and result.instance_id == "svc-1"
    assert seen["thread"] is not threading.main_thread()
    assert seen["config"] == CONFIG


async def test_async_deploy_function_is_awaited_and_async_stop_is_awaited() -> None:
    stopped: list[str] = []

    async def stop() -> None:
        await asyncio.sleep(0)
        stopped.append("svc-a")

    async def deploy(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        return DeployResult("svc-a", stop=stop, info={"where": "here"})

    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", deploy)
    result = await scripts.deploy(CONFIG)
    assert result is not None and result.info == {"where": "here"}
    await scripts.stop(result)
    assert stopped == ["svc-a"]


async def test_bare_callable_and_fogverse_pair_become_results() -> None:
    calls: list[object] = []
    scripts = DeployScripts()
    scripts.set_deploy_functions("BARE", lambda logger, config: lambda: calls.append("bare"))
    scripts.set_deploy_functions("PAIR", lambda logger, config: ("machine-7", calls.append))

    bare = await scripts.deploy({"provider": "BARE"})
    pair = await scripts.deploy({"provider": "PAIR"})
    assert bare is not None and bare.instance_id.startswith("BARE-")
    assert pair is not None and pair.instance_id == "machine-7"
    await scripts.stop(bare)
    await scripts.stop(pair)
    assert calls == ["bare", "machine-7"]


async def test_none_means_started_without_a_stop_handle() -> None:
    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", lambda logger, config: None)
    assert await scripts.deploy(CONFIG) is None
    await scripts.close()


async def test_a_nonsense_return_value_is_a_clear_error() -> None:
    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", lambda logger, config: 42)
    with pytest.raises(DeployError, match="'TEST' returned int"):
        await scripts.deploy(CONFIG)


async def test_deploy_function_errors_reach_the_caller() -> None:
    def broken(logger: logging.Logger, config: DeployConfig) -> None:
        raise RuntimeError("quota exceeded")

    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", broken)
    with pytest.raises(RuntimeError, match="quota exceeded"):
        await scripts.deploy(CONFIG)


async def test_close_stops_only_what_is_still_running() -> None:
    stopped: list[str] = []
    counter = iter(range(100))

    def deploy(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        name = f"svc-{next(counter)}"
        return DeployResult(name, stop=lambda: stopped.append(name))

    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", deploy)
    results = [await scripts.deploy(CONFIG) for _ in range(3)]
    assert all(r is not None for r in results)
    first = results[0]
    assert first is not None
    await scripts.stop(first)
    await scripts.close()
    assert sorted(stopped) == ["svc-0", "svc-1", "svc-2"]
    await scripts.close()
    assert len(stopped) == 3


async def test_close_keeps_going_when_one_stop_fails(caplog: pytest.LogCaptureFixture) -> None:
    stopped: list[str] = []

    def fail() -> None:
        raise RuntimeError("host unreachable")

    results = iter(
        [DeployResult("bad", stop=fail), DeployResult("good", stop=lambda: stopped.append("good"))]
    )
    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", lambda logger, config: next(results))
    await scripts.deploy(CONFIG)
    await scripts.deploy(CONFIG)
    with caplog.at_level(logging.ERROR):
        await scripts.close()
    assert stopped == ["good"]
    assert "stopping bad failed" in caplog.text


async def test_deploy_function_gets_the_given_logger() -> None:
    loggers: list[logging.Logger] = []
    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", lambda logger, config: loggers.append(logger))
    mine = logging.getLogger("my.deployer")
    await scripts.deploy(CONFIG, mine)
    await scripts.deploy(CONFIG)
    assert loggers[0] is mine
    assert isinstance(loggers[1], logging.Logger)


def test_set_deploy_functions_rejects_a_non_callable() -> None:
    with pytest.raises(TypeError, match="'LOCAL' must be callable"):
        DeployScripts().set_deploy_functions("LOCAL", "deploy.sh")  # type: ignore[arg-type]


async def test_a_failed_stop_is_remembered_and_close_tries_again() -> None:
    attempts: list[str] = []

    def stop() -> None:
        attempts.append("stop")
        if len(attempts) == 1:
            raise OSError("provider hiccup")

    scripts = DeployScripts()
    scripts.set_deploy_functions("TEST", lambda logger, config: DeployResult("svc-1", stop))
    result = await scripts.deploy(CONFIG)
    assert result is not None
    with pytest.raises(OSError):
        await scripts.stop(result)
    await scripts.close()
    assert attempts == ["stop", "stop"]
    await scripts.close()  # stopped now: nothing left to stop
    assert attempts == ["stop", "stop"]
