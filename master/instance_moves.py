"""Moving AGENT instances off nodes that should no longer run them, and forgetting
the ones that died with their agent.

When a node's report puts it under the battery minimum (not charging) or makes
it hot or critical, the scheduler blocks it for new work; the instances already
there are moved too: the provider starts each one on another node first, then
stops the old one, so the stage never loses its capacity while it moves.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from deploy_scripts.agent import AgentProvider
from fogverse.wire.nodes import NodeCapacity
from master.fleet import FleetService

__all__ = ["MOVE_BLOCKERS", "InstanceMover"]

log = logging.getLogger("fogverse.master.moves")

MOVE_BLOCKERS: Final = frozenset({"battery_below_minimum", "thermal"})
"""The scheduler's reasons to block a node that also move its running instances."""


class InstanceMover:
    def __init__(self, fleet: FleetService, provider: AgentProvider) -> None:
        self._fleet = fleet
        self._provider = provider
        self._moving: set[str] = set()
        self._guard = threading.Lock()
        self.moves = 0
        fleet.node_listeners.append(self._on_report)

    def _on_report(self, report: NodeCapacity, outcome: str) -> None:
        node_id = report.node_id
        if outcome in ("restarted", "lost"):
            # The instances died with the old agent (or the node is gone): the
            # deployer sees their heartbeats stop and replaces them where the
            # scheduler says; the provider stops counting them now.
            gone = self._provider.forget_node(node_id)
            if gone:
                log.warning("node %s %s: its instance(s) %s are gone", node_id, outcome,
                            ", ".join(gone))
            return
        record = self._fleet.scheduler.nodes.get(node_id)
        reason = None if record is None else record.blocker
        if reason not in MOVE_BLOCKERS or not self._provider.instances_on(node_id):
            return
        with self._guard:
            if node_id in self._moving:
                return
            self._moving.add(node_id)
        # Starting and stopping wait for agents: never on the master's loop.
        threading.Thread(target=self._move, args=(node_id, str(reason)), daemon=True,
                         name=f"move-{node_id}").start()

    def _move(self, node_id: str, reason: str) -> None:
        try:
            self.moves += len(self._provider.relocate(node_id, reason))
        except Exception:
            log.exception("moving instances off %s failed", node_id)
        finally:
            with self._guard:
                self._moving.discard(node_id)
