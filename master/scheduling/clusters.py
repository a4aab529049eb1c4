"""Clusters (fog-coordinator seed): groups of nodes, each with an elected coordinator.

When ``cluster_size_target`` unclustered nodes exist they form a cluster; its
coordinator is the member with the highest compute score (first registered on
ties). When the coordinator leaves, two or more remaining members elect a new
one; otherwise the cluster dissolves. Departed members are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Cluster", "ClusterSet"]


@dataclass(slots=True)
class Cluster:
    cluster_id: str
    coordinator: str
    members: list[str] = field(default_factory=list)  # registration order

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(slots=True)
class ClusterEvents:
    formed: int = 0
    dissolved: int = 0
    elections: int = 0


class ClusterSet:
    def __init__(self, score: Callable[[str], float]) -> None:
        self._score = score
        self.clusters: dict[str, Cluster] = {}
        self._of: dict[str, str] = {}
        self._unclustered: dict[str, None] = {}  # ordered set
        self._next = 1
        self.events = ClusterEvents()

    def cluster_of(self, node_id: str) -> Cluster | None:
        cluster_id = self._of.get(node_id)
        return None if cluster_id is None else self.clusters[cluster_id]

    def joined(self, node_id: str, target: int) -> Cluster | None:
        """A node registered; returns the cluster it completed, if any."""
        self._unclustered[node_id] = None
        return self.form(target)

    def form(self, target: int) -> Cluster | None:
        if len(self._unclustered) < target:
            return None
        members = list(self._unclustered)
        self._unclustered.clear()
        cluster = Cluster(f"cluster-{self._next:04d}", self._elect(members), members)
        self._next += 1
        self.clusters[cluster.cluster_id] = cluster
        for member in members:
            self._of[member] = cluster.cluster_id
        self.events.formed += 1
        return cluster

    def left(self, node_id: str, target: int) -> None:
        """A node departed: drop it, re-elect or dissolve its cluster."""
        self._unclustered.pop(node_id, None)
        cluster_id = self._of.pop(node_id, None)
        if cluster_id is None:
            return
        cluster = self.clusters[cluster_id]
        cluster.members.remove(node_id)
        if cluster.coordinator != node_id:
            return
        if len(cluster.members) >= 2:
            cluster.coordinator = self._elect(cluster.members)
            self.events.elections += 1
            return
        del self.clusters[cluster_id]
        self.events.dissolved += 1
        for member in cluster.members:
            del self._of[member]
            self._unclustered[member] = None
        self.form(target)

    def _elect(self, members: list[str]) -> str:
        return max(members, key=self._score)  # max keeps the first of equals

    def status(self) -> dict[str, object]:
        sizes = [c.size for c in self.clusters.values()]
        return {
            "total": len(sizes),
            "average_size": sum(sizes) / max(1, len(sizes)),
            "unclustered": len(self._unclustered),
            "formed": self.events.formed,
            "dissolved": self.events.dissolved,
            "elections": self.events.elections,
            "list": [{"cluster_id": c.cluster_id, "coordinator": c.coordinator, "size": c.size}
                     for c in self.clusters.values()],
        }
