"""Where a new stage instance goes: the auto-deployer asks, the scheduler answers.

Only a service that may run on more than one node needs an answer: a provider
that starts instances where the master runs (LOCAL, DOCKER) has one node, and
so has a fleet of one. Otherwise the scheduler picks among the registered nodes
by its strategy and policies, and the choice travels to the provider in the
DeployConfig's ``extra_configs["node_id"]``.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass

from fogverse.constants import EXTRA_NODE_ID, SINGLE_NODE_PROVIDERS
from master.fog import FogScheduler

__all__ = ["InstancePlacer", "Placement"]

log = logging.getLogger("fogverse.master.placement")


@dataclass(frozen=True, slots=True)
class Placement:
    service_name: str
    node_id: str | None
    reason: str
    candidates: int


class InstancePlacer:
    def __init__(self, fog: FogScheduler, keep: int = 50) -> None:
        self._fog = fog
        self.recent: deque[Placement] = deque(maxlen=keep)
        self.counts: Counter[str] = Counter()

    def place(self, service_name: str, provider: str,
              extra_configs: dict[str, object]) -> str | None:
        """Name the node for one more instance in ``extra_configs``; returns it (or None)."""
        nodes = len(self._fog.core.nodes)
        if provider in SINGLE_NODE_PROVIDERS:
            return self._note(Placement(service_name, None, "single_node_provider", 1))
        if EXTRA_NODE_ID in extra_configs:
            return self._note(Placement(service_name, str(extra_configs[EXTRA_NODE_ID]),
                                        "pinned_by_request", nodes))
        if nodes < 2:
            return self._note(Placement(service_name, None, "one_node", nodes))
        node = self._fog.place()
        if node is None:
            return self._note(Placement(service_name, None, "no_node_fits", nodes))
        extra_configs[EXTRA_NODE_ID] = node
        log.info("scheduler placed a new instance of %r on %s (of %d nodes)", service_name,
                 node, nodes)
        return self._note(Placement(service_name, node, "scheduled", nodes))

    def _note(self, placement: Placement) -> str | None:
        self.recent.append(placement)
        self.counts[placement.reason] += 1
        return placement.node_id
