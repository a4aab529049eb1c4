"""What a deploy function hands back: an id and a way to stop the instance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DeployResult"]


@dataclass
class DeployResult:
    """One started instance.

    ``stop`` may be sync or async (return an awaitable); the registry runs sync
    ones in a thread so a slow shutdown never stalls the master's event loop.
    ``info`` carries provider details such as the pid or the log file's path.
    ``alive``, when the provider can tell, says whether the instance still runs,
    so one that dies before its first heartbeat is known at once.
    """

    instance_id: str
    stop: Callable[[], object]
    info: dict[str, Any] = field(default_factory=dict)
    alive: Callable[[], bool] | None = None
