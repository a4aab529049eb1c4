"""The small base every Master worker extends: hooks that do nothing until overridden.

The master calls the message hooks from its control-topic reader (keep them
cheap: a thousand heartbeats a second arrive there) and ``tick`` from its timer.
``now`` is always the master's monotonic clock, so workers never read a clock
of their own and tests drive time by hand.
"""

from __future__ import annotations

from typing import Any

from fogverse.control import AutoScaleRequest, Heartbeat, InstanceStopping

__all__ = ["BaseWorker"]


class BaseWorker:
    """A Master worker. Override only the hooks you need."""

    name: str = "worker"

    async def start(self) -> None:
        """Open resources (sockets, background tasks) before the first message."""

    def on_heartbeat(self, heartbeat: Heartbeat, now: float) -> None:
        """See one decoded heartbeat; must not block."""

    def on_auto_scale_request(self, request: AutoScaleRequest, now: float) -> None:
        """See one auto-scale request the master accepted; must not block."""

    def on_instance_stopping(self, notice: InstanceStopping, now: float) -> None:
        """See an instance's goodbye; must not block."""

    async def tick(self, now: float) -> None:
        """Periodic work, called about every quarter second; must return quickly."""

    def status(self) -> dict[str, Any]:
        """What /status shows for this worker (plain JSON-able values)."""
        return {}

    async def stop(self) -> None:
        """Release everything ``start`` opened; called once at shutdown."""
