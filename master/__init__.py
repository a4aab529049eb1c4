"""The Master: watches heartbeats on the control topic and scales stages out and in.

Build one FogVerse-style with ``AutoScaleComponent().master_auto_scaler(conf,
deploy_scripts)`` or run ``fogverse master --config master.toml``.
"""

from master.component import AutoScaleComponent
from master.config import (
    MasterAutoScalerConfig,
    MasterSettings,
    ServiceSettings,
    Worker,
    load_master_config,
    master_settings,
)
from master.master import Master

__all__ = [
    "AutoScaleComponent",
    "Master",
    "MasterAutoScalerConfig",
    "MasterSettings",
    "ServiceSettings",
    "Worker",
    "load_master_config",
    "master_settings",
]
