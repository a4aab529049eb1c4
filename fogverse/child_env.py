"""What a child process inherits from the process that starts it: an allow-list.

A Master or a node agent runs with whatever its operator exported (cloud keys,
tokens, database passwords); a stage instance needs none of it unless its service
says so. Both the LOCAL provider and the agent start children from
:func:`inherited`, then add what they pass on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from fogverse.constants import ENV_BOOTSTRAP, ENV_CLIENT, ENV_NODE_ID

__all__ = ["INHERITED_ENV", "INHERITED_PREFIXES", "inherited"]

INHERITED_ENV: Final = frozenset({
    # finding programs and shared libraries; who and where the user is
    "PATH", "LD_LIBRARY_PATH", "HOME", "USER", "LOGNAME", "TMPDIR",
    # locale and time
    "LANG", "LANGUAGE", "TZ",
    # the Python set-up the parent runs in
    "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "PYTHONIOENCODING",
    "PYTHONUTF8",
    # TLS trust (not secrets: public CA bundles)
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    # the cluster and the device, as the parent sees them
    ENV_BOOTSTRAP, ENV_CLIENT, ENV_NODE_ID,
})  # fmt: skip
"""Variables of the parent's own environment a child inherits."""

INHERITED_PREFIXES: Final = ("LC_",)
"""Prefixes of inherited variable names (the locale categories)."""


def inherited(parent_env: Mapping[str, str],
              names: Iterable[str] = INHERITED_ENV) -> dict[str, str]:
    """The allow-listed part of ``parent_env``: ``names`` and every ``LC_*``."""
    allowed = frozenset(names)
    return {name: value for name, value in parent_env.items()
            if name in allowed or name.startswith(INHERITED_PREFIXES)}
