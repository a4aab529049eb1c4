"""Who may use the lock service, and how much of the Master one client can take."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from fogverse.constants import ENV_CONTROL_KEY
from fogverse.errors import ConfigError
from fogverse.lock import (
    DistributedLock,
    LockError,
    LockUnavailableError,
    encode_frame,
    read_frame,
)
from tests.polling import wait_until
from workers.distributed_lock import DistributedLockWorker

KEY = b"the-control-key"


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_CONTROL_KEY, raising=False)


class Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> tuple[Raw, dict[str, Any] | None]:
        raw = cls(*await asyncio.open_connection("127.0.0.1", port))
        return raw, await raw.reply()

    async def call(self, **message: object) -> dict[str, Any] | None:
        self.writer.write(encode_frame(dict(message)))
        return await self.reply()

    async def reply(self) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(read_frame(self.reader), 20)
        except ConnectionError:
            return None

    def close(self) -> None:
        self.writer.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::"])
def test_a_service_beyond_loopback_without_a_key_refuses_to_start(host: str) -> None:
    with pytest.raises(ConfigError, match=ENV_CONTROL_KEY) as caught:
        DistributedLockWorker(host, port=0)
    assert caught.value.setting == "bind_host"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_key(host: str) -> None:
    assert DistributedLockWorker(host, port=0).control_key is None


@pytest_asyncio.fixture(loop_scope="function")
async def keyed() -> AsyncIterator[DistributedLockWorker]:
    # Bound to every interface, which is only allowed because it has a key.
    async with DistributedLockWorker("0.0.0.0", port=0, control_key=KEY) as worker:
        yield worker


async def test_with_a_key_only_clients_that_know_it_get_locks(
    keyed: DistributedLockWorker,
) -> None:
    async with DistributedLock("127.0.0.1", keyed.port, control_key=KEY).hold("k") as token:
        assert token.valid()
    with pytest.raises(LockError, match=ENV_CONTROL_KEY) as missing:
        async with DistributedLock("127.0.0.1", keyed.port).hold("k", timeout=10):
            pytest.fail("granted without the key")
    assert missing.value.code == "auth_required"
    with pytest.raises(LockError, match="refused our control key") as wrong:
        async with DistributedLock("127.0.0.1", keyed.port, control_key=b"guess").hold("k"):
            pytest.fail("granted with a wrong key")
    assert wrong.value.code == "auth_failed"
    assert keyed.locks() == {}


async def test_the_client_takes_the_key_from_the_environment(
    keyed: DistributedLockWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_CONTROL_KEY, KEY.decode())
    async with DistributedLock("127.0.0.1", keyed.port).hold("k") as token:
        assert token.valid()


async def test_a_client_skipping_the_challenge_is_refused_and_dropped(
    keyed: DistributedLockWorker,
) -> None:
    raw, hello = await Raw.connect(keyed.port)
    assert hello is not None and hello["auth"] is True and len(hello["nonce"]) == 32
    reply = await raw.call(op="acquire", id=1, key="k")
    assert reply is not None and reply["error"] == "auth_failed"
    assert await raw.reply() is None  # closed
    assert keyed.locks() == {}
    raw.close()


async def test_connections_beyond_the_cap_are_turned_away_with_a_reason() -> None:
    async with DistributedLockWorker(port=0, max_connections=3) as worker:
        raws = [await Raw.connect(worker.port) for _ in range(3)]
        assert all(hello is not None and hello["op"] == "hello" for _, hello in raws)
        extra, refusal = await Raw.connect(worker.port)
        assert refusal is not None and refusal["error"] == "too_many_connections"
        with pytest.raises(LockUnavailableError, match="too_many_connections"):
            async with DistributedLock("127.0.0.1", worker.port).hold("k", timeout=10):
                pytest.fail("served beyond the cap")
        raws[0][0].close()
        await wait_until(lambda: worker.status()["clients"] == 2)
        async with DistributedLock("127.0.0.1", worker.port).hold("k", timeout=10):
            pass
        assert worker.turned_away == 2
        for raw, _ in raws[1:]:
            raw.close()
        extra.close()


async def test_one_connection_holds_at_most_its_share_of_keys() -> None:
    # Set in the Master's config file, as an operator would.
    limits = {"master_port": 0, "max_keys_per_client": 2}
    async with master_lock({"distributed_worker_config": limits}) as worker:
        raw, _ = await Raw.connect(worker.port)
        for n in (1, 2):
            assert (await raw.call(op="acquire", id=n, key=f"k{n}") or {})["ok"] is True
        refused = await raw.call(op="acquire", id=3, key="k3")
        assert refused is not None and refused["error"] == "too_many_keys"
        assert set(worker.locks()) == {"k1", "k2"}
        raw.close()


async def test_a_silent_connection_is_closed_but_a_holder_and_a_waiter_are_not() -> None:
    async with DistributedLockWorker(port=0, idle_timeout=0.3) as worker:
        silent, hello = await Raw.connect(worker.port)
        assert hello is not None and hello["idle"] == 0.3
        async with DistributedLock("127.0.0.1", worker.port).hold("k", lease=30) as token:
            waiter, _ = await Raw.connect(worker.port)
            waiter.writer.write(encode_frame({"op": "acquire", "id": 1, "key": "k"}))
            dropped = await silent.reply()
            assert dropped is not None and dropped["error"] == "idle"
            assert await silent.reply() is None
            # Several idle periods later the holder (renewing) still holds, and the
            # waiter, silent because it awaits the grant, still waits.
            await wait_until(lambda: worker.turned_away == 0 and worker.status()["clients"] == 2)
            token.check()
            assert worker.locks()["k"].waiting == 1
        granted = await waiter.reply()
        assert granted is not None and granted["ok"] is True
        silent.close()
        waiter.close()


FLOOD_SERVER = """
import asyncio, resource, sys
from workers.distributed_lock import DistributedLockWorker

async def main() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), resource.getrlimit(
        resource.RLIMIT_NOFILE)[1]))
    async with DistributedLockWorker(port=0, max_connections=10_000) as worker:
        print(worker.port, worker.max_connections, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_a_flood_of_connections_cannot_exhaust_the_masters_descriptors() -> None:
    limit = 128
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOOD_SERVER, str(limit), stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port, cap = map(int, (await asyncio.wait_for(proc.stdout.readline(), 30)).split())
        assert cap == limit // 4
        baseline = open_descriptors(proc.pid)
        flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3 * limit)]
        await wait_until(lambda: open_descriptors(proc.pid) >= baseline + cap)
        assert open_descriptors(proc.pid) <= baseline + cap + 1
        for _, writer in flood:
            writer.close()
        await wait_until(lambda: open_descriptors(proc.pid) <= baseline + 1)
        # Still serving.
        async with DistributedLock("127.0.0.1", port).hold("k", timeout=20) as token:
            assert token.valid()
    finally:
        proc.kill()
        await proc.wait()


def master_lock(conf: dict[str, Any]) -> DistributedLockWorker:
    from deploy_scripts import DeployScripts
    from master.config import Worker, master_settings
    from master.wiring import build_workers
    from workers.registry import InstanceRegistry

    settings = master_settings({"included_worker": [Worker.DISTRIBUTED_LOCK_WORKER], **conf},
                               env={})  # fmt: skip
    lock = build_workers(settings, DeployScripts(), InstanceRegistry(), None, None).lock  # type: ignore[arg-type]
    assert lock is not None
    return lock


def test_the_masters_advertised_address_is_not_where_it_binds() -> None:
    # FogVerse users put the address clients dial in master_host; that alone
    # must not expose the service.
    lock = master_lock({"distributed_worker_config": {"master_host": "10.1.2.3"}})
    assert lock.host == "127.0.0.1" and lock.control_key is None


def test_the_master_binds_beyond_loopback_only_with_its_control_key() -> None:
    exposed = {"distributed_worker_config": {"bind_host": "0.0.0.0"}}
    with pytest.raises(ConfigError, match="bind_host"):
        master_lock(exposed)
    lock = master_lock({**exposed, "control_key": "k3y"})
    assert lock.host == "0.0.0.0" and lock.control_key == b"k3y"
