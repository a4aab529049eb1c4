"""Rolling out a new version of a service: rolling, canary or blue-green, watched, undone
when unhealthy, resumed after a master restart.

Pure parts: :mod:`~master.rollout.plan` (each strategy's steps),
:mod:`~master.rollout.health` (verdicts), :mod:`~master.rollout.decide` (the next
move). :mod:`~master.rollout.worker` carries them out through the auto-deployer.
"""

from master.rollout.model import Phase, Rollout, RolloutSettings, Strategy
from master.rollout.worker import RolloutRefusedError, RolloutStatus, RolloutWorker

__all__ = [
    "Phase",
    "Rollout",
    "RolloutRefusedError",
    "RolloutSettings",
    "RolloutStatus",
    "RolloutWorker",
    "Strategy",
]
