"""Clusters form at the target size, elect the best-scoring coordinator, re-elect or dissolve."""

from __future__ import annotations

from sched_helpers import desktop

from master.scheduling import Scheduler


def fleet(scores: dict[str, float]) -> Scheduler:
    """Nodes whose compute score is the given value (free share on an 8-core mains box)."""
    scheduler = Scheduler()
    for node_id, score in scores.items():
        scheduler.register_node(node_id, desktop(cpu_utilization=1.0 - score, memory_used_mb=0,
                                                 memory_mb=1))
    return scheduler


def clusters(scheduler: Scheduler) -> list[tuple[str, list[str]]]:
    return [(c.coordinator, list(c.members)) for c in scheduler.clusters.clusters.values()]


def test_a_cluster_forms_at_the_target_with_the_best_coordinator() -> None:
    scheduler = fleet({"a": 0.2, "b": 0.9, "c": 0.5, "d": 0.9})
    assert clusters(scheduler) == []
    scheduler.register_node("e", desktop())
    assert clusters(scheduler) == [("b", ["a", "b", "c", "d", "e"])]  # first of the two 0.9s
    status = scheduler.get_system_status()["clusters"]
    assert (status["total"], status["average_size"]) == (1, 5.0)


def test_coordinator_leaving_triggers_an_election() -> None:
    scheduler = fleet({"a": 0.2, "b": 0.9, "c": 0.5, "d": 0.7, "e": 0.1})
    scheduler.unregister_node("b")
    assert clusters(scheduler) == [("d", ["a", "c", "d", "e"])]
    assert scheduler.clusters.events.elections == 1


def test_departed_members_are_removed_and_a_lone_member_dissolves() -> None:
    scheduler = fleet({"a": 0.2, "b": 0.9, "c": 0.5})
    scheduler.policies["cluster_size_target"] = 3
    scheduler.clusters.form(3)
    assert clusters(scheduler) == [("b", ["a", "b", "c"])]
    scheduler.unregister_node("a")
    assert clusters(scheduler) == [("b", ["b", "c"])]
    scheduler.unregister_node("b")                  # one member left: no election
    assert clusters(scheduler) == []
    assert scheduler.clusters.events.dissolved == 1
    assert scheduler.get_system_status()["clusters"]["unclustered"] == 1


def test_many_clusters_of_target_size() -> None:
    scheduler = fleet({f"n{i:02d}": 0.5 for i in range(12)})
    assert [len(members) for _, members in clusters(scheduler)] == [5, 5]
    assert scheduler.get_system_status()["clusters"]["unclustered"] == 2
