"""What the Master raises that users catch."""

from __future__ import annotations

from fogverse.errors import FogVerseError

__all__ = ["MasterFailed", "MasterFailedError"]


class MasterFailedError(FogVerseError):
    """The master stopped because it could no longer read or tick (it stopped its instances)."""


MasterFailed = MasterFailedError
"""The earlier name, kept so existing ``except MasterFailed`` clauses still work."""
