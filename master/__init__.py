"""The Master: watches heartbeats on the control topic and scales stages out and in.

Build one FogVerse-style with ``AutoScaleComponent().master_auto_scaler(conf,
deploy_scripts)`` or run ``fogverse master --config master.toml``.
"""

from deploy_scripts import ServiceSpec
from master.component import AutoScaleComponent
from master.config import (
    MasterAutoScalerConfig,
    MasterSettings,
    Worker,
    load_master_config,
    master_settings,
)
from master.errors import MasterFailed, MasterFailedError
from master.fog import FogScheduler
from master.master import Master
from master.plans import RequestRefused, RequestRefusedError, StagePlan
from master.status import MasterStatus, StageStatus

__all__ = [
    "AutoScaleComponent",
    "FogScheduler",
    "Master",
    "MasterAutoScalerConfig",
    "MasterFailed",
    "MasterFailedError",
    "MasterSettings",
    "MasterStatus",
    "RequestRefused",
    "RequestRefusedError",
    "ServiceSpec",
    "StagePlan",
    "StageStatus",
    "Worker",
    "load_master_config",
    "master_settings",
]
