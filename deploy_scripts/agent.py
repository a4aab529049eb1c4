"""The built-in ``AGENT`` provider: instances run on node agents, where the scheduler says.

For a service declared with ``provider = "AGENT"``, each deploy asks the fleet
(the master's link to its agents) for the best node, sends that node's agent an
:class:`~fogverse.wire.nodes.InstanceStart` built from the *declared* service
(module or command, env, cwd: never from a stage's request), and waits until the
agent says the instance started or why it would not.

An instance keeps its id wherever it runs. :meth:`AgentProvider.relocate` moves
the instances off a node that should no longer run them (battery under the
minimum, hot): a new one starts on another node first, then the old one stops.
:meth:`AgentProvider.scale_in_rank` lets the deployer stop the instance on the
worst-scoring node first.

What a node runs is reconciled with what this provider placed there
(:meth:`AgentProvider.reconcile`, on every report): an instance the node runs that
it was not given is stopped; one it was given but no longer runs (its agent
restarted, or it is gone without a word) starts again where the scheduler says,
under the same id. A restarted master adopts the instances its state topic
records (:meth:`AgentProvider.adopt`) and lets the next reports confirm them.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from deploy_scripts.config import DeployConfig, ServiceSpec
from deploy_scripts.errors import DeployError, UnknownServiceError
from deploy_scripts.result import DeployResult
from deploy_scripts.version import versioned_spec
from fogverse.constants import EXTRA_NODE_ID, INFO_VERSION, PROVIDER_AGENT
from fogverse.wire.nodes import InstanceEvent, InstanceStart, InstanceStop

__all__ = ["AgentProvider", "Fleet"]

log = logging.getLogger("fogverse.deploy.agent")

REPORT_SLACK_S: Final = 1.0
"""A report sent this long after an instance started (clock skew, delivery) lists it."""


class Fleet(Protocol):
    """What the provider needs from the master's fleet; every method is thread-safe."""

    def place_instance(self, service: str, avoid: tuple[str, ...]) -> str | None:
        """The best node for a new instance now (None: no node can take one)."""

    def node_score(self, node_id: str) -> float | None:
        """The node's current score (None: not a known node)."""

    def send_instance_order(self, order: InstanceStart | InstanceStop) -> None: ...

    def add_instance_listener(self, listener: Callable[[InstanceEvent], None]) -> None: ...


@dataclass
class _Waiter:
    node_id: str
    done: threading.Event
    event: InstanceEvent | None = None


class AgentProvider:
    """Starts declared services on node agents; register it as ``"AGENT"``."""

    def __init__(
        self,
        services: Mapping[str, ServiceSpec],
        fleet: Fleet,
        base_env: Mapping[str, str] | None = None,
        *,
        start_timeout: float = 30.0,
        stop_grace: float = 10.0,
    ) -> None:
        self._services = dict(services)
        self._fleet = fleet
        self._base_env = dict(base_env or {})
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._where: dict[str, tuple[str, ServiceSpec]] = {}
        """instance id -> (node id, service) for every instance this provider runs."""
        self._since: dict[str, float] = {}
        """instance id -> when it was started or adopted where it is (epoch seconds)."""
        self._waiters: dict[tuple[str, str], _Waiter] = {}
        self._guard = threading.Lock()
        fleet.add_instance_listener(self._on_event)

    # -- deploy ------------------------------------------------------------------------

    def __call__(self, logger: logging.Logger, config: DeployConfig) -> DeployResult:
        spec = self._spec_for(config)
        instance_id = f"{spec.name}-{uuid.uuid4().hex[:10]}"
        # The master's own scheduler may have named a node; it counts if it is an agent.
        pinned = (config.get("extra_configs") or {}).get(EXTRA_NODE_ID)
        if isinstance(pinned, str) and self._fleet.node_score(pinned) is None:
            pinned = None
        node = self._start_somewhere(spec, instance_id, (), pinned)
        logger.info("started %s on node %s", instance_id, node)
        return DeployResult(
            instance_id=instance_id,
            stop=functools.partial(self._stop, instance_id),
            info={"service": spec.name, "node": node, INFO_VERSION: spec.version,
                  "scale_in_rank": functools.partial(self.scale_in_rank, instance_id)},
        )

    def adopt(self, instance_id: str, info: Mapping[str, Any]) -> DeployResult | None:
        """Take back an instance an earlier master placed, from its recorded ``info``.

        The node's next reports confirm it (or it starts again elsewhere, see
        :meth:`reconcile`). An instance of a service no longer declared is not ours."""
        node, name = info.get("node"), info.get("service")
        spec = self._services.get(name) if isinstance(name, str) else None
        if not isinstance(node, str) or spec is None:
            return None
        with self._guard:
            self._where[instance_id] = (node, spec)
            self._since[instance_id] = time.time()
        log.info("adopted %s on node %s", instance_id, node)
        return DeployResult(
            instance_id=instance_id, stop=functools.partial(self._stop, instance_id),
            info={**info, "scale_in_rank": functools.partial(self.scale_in_rank, instance_id)},
        )

    def _spec_for(self, config: DeployConfig) -> ServiceSpec:
        name = config.get("service_name")
        if name is None:
            raise DeployError("deploy config has no 'service_name'; AGENT needs one")
        spec = self._services.get(name)
        if spec is None:
            raise UnknownServiceError(name, PROVIDER_AGENT, self._services)
        if spec.module is None and spec.command is None:
            raise DeployError(f"service {name!r} declares neither module nor command: an "
                              "agent cannot know what to run")
        return versioned_spec(spec, config)

    def _start_somewhere(self, spec: ServiceSpec, instance_id: str,
                         avoid: tuple[str, ...], pinned: str | None = None) -> str:
        node = pinned or self._fleet.place_instance(spec.name, avoid)
        if node is None:
            raise DeployError(f"no node can take an instance of {spec.name!r} now (every "
                              "agent is lost, busy, hot or low on battery)")
        order = InstanceStart(
            node_id=node, instance_id=instance_id, service_name=spec.name,
            module=spec.module, command=tuple(spec.command or ()),
            env={**self._base_env, **spec.env}, cwd=spec.cwd,
        )
        event = self._ask(node, instance_id, order, self._start_timeout)
        if event is None:
            self._fleet.send_instance_order(InstanceStop(node, instance_id, self._stop_grace))
            raise DeployError(f"node {node} did not answer the start of {instance_id} within "
                              f"{self._start_timeout:g}s")
        if event.state != "started":
            raise DeployError(f"node {node} would not start {instance_id}: {event.detail}")
        with self._guard:
            self._where[instance_id] = (node, spec)
            self._since[instance_id] = time.time()
        return node

    def _ask(self, node: str, instance_id: str, order: InstanceStart | InstanceStop,
             timeout: float) -> InstanceEvent | None:
        waiter = _Waiter(node, threading.Event())
        with self._guard:
            self._waiters[node, instance_id] = waiter
        try:
            self._fleet.send_instance_order(order)
            waiter.done.wait(timeout)
            return waiter.event
        finally:
            with self._guard:
                self._waiters.pop((node, instance_id), None)

    def _on_event(self, event: InstanceEvent) -> None:
        with self._guard:
            waiter = self._waiters.get((event.node_id, event.instance_id))
            if event.state in ("exited", "stopped"):
                where = self._where.get(event.instance_id)
                if where is not None and where[0] == event.node_id:
                    del self._where[event.instance_id]
        if waiter is not None:
            waiter.event = event
            waiter.done.set()

    # -- stop, move, rank --------------------------------------------------------------

    def _stop(self, instance_id: str) -> InstanceEvent | None:
        with self._guard:
            where = self._where.pop(instance_id, None)
        if where is None:
            return None  # already gone: a repeated stop is harmless
        node = where[0]
        return self._ask(node, instance_id, InstanceStop(node, instance_id, self._stop_grace),
                         self._stop_grace + 5.0)

    def reconcile(self, node_id: str, running: Collection[str], sent_at: float
                  ) -> tuple[list[str], list[str]]:
        """A node's report against what was placed there: (strays, missing) instance ids.

        Strays run there but were not placed there (nor are being started there);
        missing were placed there before the report was sent but it does not list them.
        """
        with self._guard:
            strays = sorted(i for i in running if (node_id, i) not in self._waiters
                            and self._where.get(i, ("",))[0] != node_id)
            missing = sorted(i for i, (n, _) in self._where.items()
                             if n == node_id and i not in running
                             and (node_id, i) not in self._waiters
                             and self._since.get(i, 0.0) + REPORT_SLACK_S < sent_at)
        return strays, missing

    def stop_stray(self, node_id: str, instance_id: str) -> None:
        """Order a node to stop an instance it was not given (no waiting)."""
        self._fleet.send_instance_order(InstanceStop(node_id, instance_id, self._stop_grace))

    def restart(self, instance_ids: Collection[str], avoid: tuple[str, ...] = ()) -> list[str]:
        """Start each instance again (same id) where the scheduler says; the started ones.

        For instances that died with their agent or vanished. Blocking: from a thread.
        One no node can take now is forgotten (the deployer sees it gone)."""
        started = []
        for instance_id in instance_ids:
            with self._guard:
                where = self._where.pop(instance_id, None)
            if where is None:
                continue  # stopped, moved or already restarted meanwhile
            try:
                node = self._start_somewhere(where[1], instance_id, avoid)
            except DeployError as exc:
                log.warning("cannot start %s again: %s", instance_id, exc)
                continue
            log.info("started %s again on %s (it was gone from %s)", instance_id, node,
                     where[0])
            started.append(instance_id)
        return started

    def instances_on(self, node_id: str) -> list[str]:
        with self._guard:
            return sorted(i for i, (n, _) in self._where.items() if n == node_id)

    def relocate(self, node_id: str, reason: str) -> list[str]:
        """Move every instance off ``node_id``: start elsewhere first, then stop the old one.

        Blocking (waits for agents): call it from a thread. Returns the moved ids;
        an instance no other node can take stays where it is.
        """
        moved = []
        for instance_id in self.instances_on(node_id):
            with self._guard:
                spec = self._where[instance_id][1]
            try:
                new_node = self._start_somewhere(spec, instance_id, (node_id,))
            except DeployError as exc:
                log.warning("cannot move %s off %s (%s): %s", instance_id, node_id, reason, exc)
                continue
            log.info("moved %s from %s to %s (%s)", instance_id, node_id, new_node, reason)
            # Hard: the old copy must not say goodbye for an id that lives on. Its
            # uncommitted messages are delivered again to the group (at least once).
            self._ask(node_id, instance_id, InstanceStop(node_id, instance_id, 0.0, hard=True),
                      10.0)
            moved.append(instance_id)
        return moved

    def scale_in_rank(self, instance_id: str) -> float:
        """Lower ranks stop first on scale-in: the node's score (unknown nodes first)."""
        with self._guard:
            where = self._where.get(instance_id)
        score = None if where is None else self._fleet.node_score(where[0])
        return -1.0 if score is None else score
