"""The small base every Master worker extends: hooks that do nothing until overridden.

The master calls the message hooks from its control-topic reader (keep them
cheap: a thousand heartbeats a second arrive there) and ``tick`` from its timer,
each with the master's monotonic ``now``, so a test drives a worker's decisions
by passing the time by hand. Work a worker does beside the ticks (the
input/output worker's lag poller, the end of a deploy) dates itself with the
same monotonic clock.
"""

from __future__ import annotations

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

    def status(self) -> object:
        """What this worker reports about itself, shown under its name in /status.

        A dataclass (or plain JSON-able values); None when it has nothing to say.
        """
        return None

    async def stop(self) -> None:
        """Release everything ``start`` opened; called once at shutdown."""
