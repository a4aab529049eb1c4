"""The scheduling core: pure, synchronous, deterministic; time is passed in.

Capacity reports and tasks go in; placements come out. It imports nothing of
the project but its own modules, so it is tested and benchmarked on its own.
"""

from master.scheduling.capacity import Capacity, ThermalState, compute_score
from master.scheduling.clusters import Cluster, ClusterSet
from master.scheduling.harvest import (
    ContributionLedger,
    HarvestProfile,
    HarvestSession,
    HarvestSignals,
    harvest_blocker,
)
from master.scheduling.policies import (
    PRODUCTION_POLICIES,
    Policies,
    PolicyError,
    PolicyMapping,
    long_task_allowed,
    node_blocker,
)
from master.scheduling.scheduler import Assignment, SchedulePass, Scheduler, UnknownNode
from master.scheduling.scoring import network_factor, node_key, node_score
from master.scheduling.strategies import Strategy
from master.scheduling.tasks import TaskPriority, TaskRecord, TaskSpec, TaskState, TaskType
from master.scheduling.validation import CapacityRejected, capacity_from_report, validate_capacity

__all__ = [
    "PRODUCTION_POLICIES",
    "Assignment",
    "Capacity",
    "CapacityRejected",
    "Cluster",
    "ClusterSet",
    "ContributionLedger",
    "HarvestProfile",
    "HarvestSession",
    "HarvestSignals",
    "Policies",
    "PolicyError",
    "PolicyMapping",
    "SchedulePass",
    "Scheduler",
    "Strategy",
    "TaskPriority",
    "TaskRecord",
    "TaskSpec",
    "TaskState",
    "TaskType",
    "ThermalState",
    "UnknownNode",
    "capacity_from_report",
    "compute_score",
    "harvest_blocker",
    "long_task_allowed",
    "network_factor",
    "node_blocker",
    "node_key",
    "node_score",
    "validate_capacity",
]
