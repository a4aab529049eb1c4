"""The Master's workers: statistic, input/output and distributed lock, on one registry.

Each worker is small and testable on its own; the master wires them together
(the AUTO_DEPLOYER, which acts on what these know, lives with the master in
``master.deployer``). Assessments are pure functions of what the workers know
and of a ``now`` passed in, so they are tested without a broker or a clock.
"""

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
    "Assessment",
    "BaseWorker",
    "InputOutputSettings",
    "InputOutputWorker",
    "InstanceRecord",
    "InstanceRegistry",
    "StageKey",
    "StatisticSettings",
    "StatisticWorker",
    "Verdict",
    "WindowStats",
    "assess",
    "window_stats",
]
