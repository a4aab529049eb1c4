"""Keeping AGENT instances where they should run, from every node report.

When a node's report puts it under the battery minimum (not charging) or makes
it hot or critical, the scheduler blocks it for new work; the instances already
there are moved too: the provider starts each one on another node first, then
stops the old one, so the stage never loses its capacity while it moves.

Every report is also reconciled with what the provider placed on the node: an
instance it runs but was not given is stopped; instances that died with a
restarted or lost agent, or vanished from its reports, start again (same id)
where the scheduler says. While the master settles after a start, strays are
left alone: the reports it reads then may be older than its adoptions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
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
        self._restarting: set[str] = set()
        self._guard = threading.Lock()
        self.moves = 0
        self.restarts = 0
        self.strays_stopped = 0
        fleet.node_listeners.append(self._on_report)

    def _on_report(self, report: NodeCapacity, outcome: str) -> None:
        node_id = report.node_id
        if outcome in ("restarted", "lost"):
            # The instances died with the old agent (or the node is gone).
            gone = self._provider.instances_on(node_id)
            if gone:
                log.warning("node %s %s: its instance(s) %s are gone; starting them again",
                            node_id, outcome, ", ".join(gone))
                self._in_thread(self._restart, gone, (node_id,) if outcome == "lost" else ())
            return  # a new agent runs nothing yet: nothing else to reconcile
        if outcome != "rejected":
            self._reconcile(report)
        record = self._fleet.scheduler.nodes.get(node_id)
        reason = None if record is None else record.blocker
        if reason not in MOVE_BLOCKERS or not self._provider.instances_on(node_id):
            return
        with self._guard:
            if node_id in self._moving:
                return
            self._moving.add(node_id)
        # Starting and stopping wait for agents: never on the master's loop.
        self._in_thread(self._move, node_id, str(reason))

    def _reconcile(self, report: NodeCapacity) -> None:
        node_id = report.node_id
        entry = self._fleet.nodes.entries.get(node_id)
        strays, missing = self._provider.reconcile(
            node_id, report.running_instances, 0.0 if entry is None else entry.sent_at)
        if strays and not self._fleet.desk.recovery.settling:
            for instance_id in strays:
                log.warning("node %s runs instance %s it was not given: stopping it",
                            node_id, instance_id)
                self._provider.stop_stray(node_id, instance_id)
                self.strays_stopped += 1
        if missing:
            log.warning("node %s no longer runs %s: starting again", node_id,
                        ", ".join(missing))
            self._in_thread(self._restart, missing, ())

    def _restart(self, instance_ids: list[str], avoid: tuple[str, ...]) -> None:
        with self._guard:
            fresh = [i for i in instance_ids if i not in self._restarting]
            self._restarting.update(fresh)
        try:
            self.restarts += len(self._provider.restart(fresh, avoid))
        except Exception:
            log.exception("starting %s again failed", ", ".join(fresh))
        finally:
            with self._guard:
                self._restarting.difference_update(fresh)

    @staticmethod
    def _in_thread(target: Callable[..., None], *args: object) -> None:
        threading.Thread(target=target, args=args, daemon=True, name="instance-moves").start()

    def _move(self, node_id: str, reason: str) -> None:
        try:
            self.moves += len(self._provider.relocate(node_id, reason))
        except Exception:
            log.exception("moving instances off %s failed", node_id)
        finally:
            with self._guard:
                self._moving.discard(node_id)
