"""Who runs which task, when the master's memory and a node's word may disagree.

After a restart the master knows each task's last published status (the compacted
status topic, :mod:`master.fleet_reader`) and reads again the submissions it had
not finished. A task it had placed is an *orphan* until its node speaks:

- the node's report lists it: adopted as running there (not run again);
- a result, failure or refusal for that attempt: applied as if nothing happened;
- the node keeps reporting without it, or has not reported once the master has
  settled: that attempt is lost, and the task is queued again within its retry
  limit.

Every report reconciles too: a task the node runs that the master did not give it
(a forged or stale order, an attempt since given to another node) is revoked; a
task the master gave it that it keeps not listing is a lost attempt, retried.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from fogverse.wire.nodes import NodeCapacity
from fogverse.wire.tasks import (
    FINAL_STATES,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
    TaskRevoke,
    TaskStatus,
)
from master.scheduling import TaskState

if TYPE_CHECKING:
    from master.tasks import TaskDesk

__all__ = ["REPORTS_TO_LOSE", "Orphan", "TaskRecovery"]

log = logging.getLogger("fogverse.master.tasks")

REPORTS_TO_LOSE: Final = 3
"""Reports without a task its node was given before the attempt counts as lost: the
first may have been built before the order arrived."""

_REVOKED_KEPT: Final = 10_000

Report = TaskProgress | TaskResult | TaskFailure | TaskRefusal


@dataclass
class Orphan:
    node_id: str
    attempt: int
    since: float
    """When the last master said where it runs (epoch seconds): older reports tell nothing."""
    misses: int = 0


class TaskRecovery:
    """The desk's memory of the last master, and its reconciliation with the nodes."""

    def __init__(self, desk: TaskDesk) -> None:
        self._desk = desk
        self.earlier: dict[str, TaskStatus] = {}
        """Statuses the last master published, by task id, until the task is read again."""
        self.orphans: dict[str, Orphan] = {}
        self.held: list[tuple[str, int]] = []
        """Submissions read while settling, with the attempts they had used."""
        self.settling = False
        self.revoked: Counter[str] = Counter()
        self.lost_attempts = 0
        self.adopted = 0
        self._sent_revokes: dict[tuple[str, str], None] = {}
        self._unseen: dict[str, dict[str, int]] = {}
        """Node -> its assigned tasks -> reports since that did not list them."""

    # -- a submission read again -----------------------------------------------------

    def on_submit(self, task_id: str) -> int | None:
        """Restore what the last master said of this task. None: nothing more to do;
        otherwise the attempts it has used, and the desk judges it now."""
        desk = self._desk
        task = desk.tasks[task_id]
        earlier = self.earlier.pop(task_id, None)
        attempts = 0
        if earlier is not None:
            task.submitted_wall = earlier.submitted_at or task.submitted_wall
            task.published = earlier.state
            if earlier.state in FINAL_STATES:
                return None  # said once already: never run or said again
            if earlier.state in ("assigned", "running") and earlier.node_id:
                self.orphans[task_id] = Orphan(earlier.node_id, earlier.attempts,
                                               earlier.updated_at or 0.0)
                task.running = earlier.state == "running"
                return None
            attempts = earlier.attempts
        if self.settling:
            self.held.append((task_id, attempts))
            return None
        return attempts

    def settle(self, now: float, wall: float) -> None:
        """The master has heard the nodes: judge what was held, give up on silent nodes."""
        self.settling = False
        desk = self._desk
        held, self.held = self.held, []
        for task_id, attempts in held:
            desk.judge(task_id, now, wall, attempts)
        for task_id, orphan in list(self.orphans.items()):
            entry = desk.nodes.entries.get(orphan.node_id)
            if entry is None:
                self._lose(task_id, now, wall, "node_lost")
            elif task_id in entry.report.running_tasks:
                self._adopt(task_id, now, wall)

    # -- reports ---------------------------------------------------------------------

    def on_orphan_report(self, msg: Report, now: float, wall: float) -> bool:
        """Handle a report for an orphan; False when the desk should go on with it."""
        orphan = self.orphans.get(msg.task_id)
        if orphan is None:
            return False
        desk = self._desk
        if (msg.node_id, msg.attempt) != (orphan.node_id, orphan.attempt):
            desk.ignored["not_assigned_to_sender" if msg.node_id != orphan.node_id
                         else "stale_attempt"] += 1
            return True
        if msg.node_id in desk.scheduler.nodes:
            self._adopt(msg.task_id, now, wall)
            return False  # running here again: the desk applies the report as usual
        task = desk.tasks[msg.task_id]
        if isinstance(msg, TaskProgress):
            task.progress, task.running = msg.fraction, True
        elif isinstance(msg, TaskResult):
            del self.orphans[msg.task_id]
            task.result, task.error = msg.result, None
            desk.publish_final(msg.task_id, wall, "completed", msg.node_id, msg.attempt)
        else:
            self._lose(msg.task_id, now, wall, "handler_error" if isinstance(
                msg, TaskFailure) else f"refused_{msg.reason}")
        return True

    def reconcile(self, report: NodeCapacity, sent_at: float, now: float, wall: float) -> None:
        """Compare what a node says it runs (as of ``sent_at``) with what the master gave it."""
        desk = self._desk
        node_id = report.node_id
        node = desk.scheduler.nodes.get(node_id)
        if node is None:
            return  # a rejected report: nothing to compare with
        running = set(report.running_tasks)
        for task_id, orphan in list(self.orphans.items()):
            if orphan.node_id != node_id:
                continue
            if task_id in running:
                self._adopt(task_id, now, wall)
            elif sent_at > orphan.since:  # a report read again may predate the order
                orphan.misses += 1
                if orphan.misses >= REPORTS_TO_LOSE:
                    self._lose(task_id, now, wall, "lost_on_node")
        unseen = self._unseen.get(node_id, {})
        self._unseen[node_id] = still = {}
        for task_id in list(node.active):
            if task_id in running:
                continue
            misses = unseen.get(task_id, 0) + 1
            if misses < REPORTS_TO_LOSE:
                still[task_id] = misses
                continue
            self.lost_attempts += 1
            log.warning("task %s is not running on %s, which was given it: retried",
                        task_id, node_id)
            desk.scheduler.fail_task(task_id, now, "lost_on_node")
            desk.publish_state(task_id, wall)
        for task_id in running:
            self._check_stray(node_id, task_id)

    def _check_stray(self, node_id: str, task_id: str) -> None:
        desk = self._desk
        record = desk.scheduler.tasks.get(task_id)
        orphan = self.orphans.get(task_id)
        if record is None and orphan is None:
            if self.settling or task_id in desk.tasks:
                return  # read again but not judged yet, or finished before a restart
            reason = "unknown_task"
        elif orphan is not None:
            if orphan.node_id == node_id:
                return
            reason = "not_assigned_here"
        elif record is not None and record.state.final:
            return  # its result is in: the report was built just before
        elif record is not None and record.state is TaskState.ASSIGNED \
                and record.node_id == node_id:
            return
        else:
            reason = "not_assigned_here"
        key = (node_id, task_id)
        if key in self._sent_revokes:
            return
        self._sent_revokes[key] = None
        if len(self._sent_revokes) > _REVOKED_KEPT:
            self._sent_revokes.pop(next(iter(self._sent_revokes)))
        self.revoked[reason] += 1
        log.warning("node %s runs task %s it was not given (%s): revoked", node_id, task_id,
                    reason)
        desk.send_order(TaskRevoke(node_id, task_id, reason))

    def on_node_gone(self, node_id: str, now: float, wall: float) -> None:
        self._unseen.pop(node_id, None)
        for task_id, orphan in list(self.orphans.items()):
            if orphan.node_id == node_id:
                self._lose(task_id, now, wall, "node_lost")

    # -- outcomes --------------------------------------------------------------------

    def _adopt(self, task_id: str, now: float, wall: float) -> None:
        orphan = self.orphans.pop(task_id)
        desk = self._desk
        desk.scheduler.resume(desk.spec_of(task_id, now, wall), task_id, now,
                              attempts=orphan.attempt, node_id=orphan.node_id)
        self.adopted += 1
        desk.publish_state(task_id, wall)

    def _lose(self, task_id: str, now: float, wall: float, reason: str) -> None:
        orphan = self.orphans.pop(task_id)
        self.lost_attempts += 1
        log.warning("task %s: attempt %d on %s is lost (%s)", task_id, orphan.attempt,
                    orphan.node_id, reason)
        desk = self._desk
        desk.tasks[task_id].running = False
        desk.scheduler.resume(desk.spec_of(task_id, now, wall), task_id, now,
                              attempts=orphan.attempt, tried=(orphan.node_id,), reason=reason)
        desk.publish_state(task_id, wall)
