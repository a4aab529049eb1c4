"""The AUTO_DEPLOYER worker: bookkeeping of started instances and the actions it takes.

The decisions themselves are the pure core in :mod:`master.scheduling.autoscale`.
"""

from master.deployer.actions import Actions, InstanceLedger, PartitionAdmin
from master.deployer.instances import Deployed, StageState
from master.deployer.worker import AutoDeployer, DecisionRecord, DeployerStatus, StagePlanStatus

__all__ = [
    "Actions",
    "AutoDeployer",
    "DecisionRecord",
    "Deployed",
    "DeployerStatus",
    "InstanceLedger",
    "PartitionAdmin",
    "StagePlanStatus",
    "StageState",
]
