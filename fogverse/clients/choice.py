"""Which Kafka client library a process uses.

confluent-kafka (librdkafka) is the default and the fastest. aiokafka is pure
Python and installs where librdkafka has no wheel (32-bit ARM, Termux, musl
images). A stage's ``client`` setting or ``FOGVERSE_CLIENT`` chooses; with
neither, aiokafka is used when confluent-kafka cannot be imported, and the
log says so once per process.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fogverse.constants import CLIENT_AIOKAFKA, CLIENT_CONFLUENT, CLIENTS, ENV_CLIENT
from fogverse.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from fogverse.clients.base import Backend

__all__ = ["backend_for", "client_name"]

log = logging.getLogger("fogverse.clients")

_MODULES = {CLIENT_CONFLUENT: "confluent_kafka", CLIENT_AIOKAFKA: "aiokafka"}
_BACKENDS = {CLIENT_CONFLUENT: "fogverse.clients.confluent",
             CLIENT_AIOKAFKA: "fogverse.clients.aio"}
_INSTALL = {CLIENT_CONFLUENT: "pip install 'fogverse[confluent]'",
            CLIENT_AIOKAFKA: "pip install 'fogverse[aiokafka]'"}
_fallback_logged = False


def client_name(requested: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The backend to use: ``requested``, else ``$FOGVERSE_CLIENT``, else the default."""
    env = os.environ if env is None else env
    name = requested or env.get(ENV_CLIENT, "").strip() or None
    if name is not None:
        if name not in CLIENTS:
            raise ConfigError(f"client ({ENV_CLIENT})", name, f"expected one of {CLIENTS}")
        return name
    if _importable(CLIENT_CONFLUENT):
        return CLIENT_CONFLUENT
    if not _importable(CLIENT_AIOKAFKA):
        raise MissingDependencyError(
            "no Kafka client library is installed: "
            f"{_INSTALL[CLIENT_CONFLUENT]} or {_INSTALL[CLIENT_AIOKAFKA]}"
        )
    _log_fallback()
    return CLIENT_AIOKAFKA


def backend_for(requested: str | None = None) -> Backend:
    """The backend object for ``requested`` (see :func:`client_name`)."""
    name = client_name(requested)
    if not _importable(name):
        raise MissingDependencyError(
            f"client={name!r} needs {_MODULES[name]}: {_INSTALL[name]}"
        )
    module = importlib.import_module(_BACKENDS[name])
    backend: Backend = module.BACKEND
    return backend


def _importable(name: str) -> bool:
    try:
        importlib.import_module(_MODULES[name])
    except ImportError:
        return False
    return True


def _log_fallback() -> None:
    global _fallback_logged
    if not _fallback_logged:
        _fallback_logged = True
        log.warning("confluent-kafka cannot be imported; using the aiokafka client "
                    "(set %s=aiokafka to choose it explicitly)", ENV_CLIENT)
