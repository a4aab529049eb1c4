"""The Master's workers: statistic, input/output, auto-deployer and distributed lock.

Each worker is small and testable on its own; the master wires them together.
Decisions are pure functions of what the workers know and of a ``now`` passed
in, so they are tested without a broker or a clock.
"""

from workers.auto_deployer import (
    Action,
    AutoDeployer,
    Decision,
    DeployerSettings,
    ScaleInputs,
    StagePlan,
    decide,
)
from workers.base import BaseWorker
from workers.input_output import (
    Assessment,
    InputOutputSettings,
    InputOutputWorker,
    Verdict,
    assess,
)
from workers.registry import InstanceRecord, InstanceRegistry, StageKey
from workers.statistic import StatisticSettings, StatisticWorker, WindowStats, window_stats

__all__ = [
    "Action",
    "Assessment",
    "AutoDeployer",
    "BaseWorker",
    "Decision",
    "DeployerSettings",
    "InputOutputSettings",
    "InputOutputWorker",
    "InstanceRecord",
    "InstanceRegistry",
    "ScaleInputs",
    "StageKey",
    "StagePlan",
    "StatisticSettings",
    "StatisticWorker",
    "Verdict",
    "WindowStats",
    "assess",
    "decide",
    "window_stats",
]
