"""FogVerse's ``AutoScaleComponent``: the short way to build a Master or an Observer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deploy_scripts import DeployScripts
from fogverse.constants import DEFAULT_CONTROL_TOPIC
from fogverse.observer import InstanceInfo, Observer, ObserverConfig
from master.config import MasterAutoScalerConfig, master_settings
from master.master import Master
from workers.base import BaseWorker

__all__ = ["AutoScaleComponent"]


class AutoScaleComponent:
    """Builds FogVerse's parts from FogVerse's config dictionaries."""

    def master_auto_scaler(
        self,
        conf: MasterAutoScalerConfig | Mapping[str, Any],
        deploy_scripts: DeployScripts | None = None,
        observers: Sequence[BaseWorker] = (),
    ) -> Master:
        """A Master with the workers ``conf['included_worker']`` names (all by default).

        ``await master.run()`` runs it until SIGTERM/SIGINT or ``master.stop()``.
        """
        return Master(master_settings(conf), deploy_scripts, observers)

    def observer(
        self, conf: ObserverConfig | None = None, info: InstanceInfo | None = None
    ) -> Observer:
        """An Observer sending to ``conf['producer_topic']`` on ``conf['kafka_server']``."""
        conf = conf or {}
        return Observer(
            conf.get("producer_topic", DEFAULT_CONTROL_TOPIC),
            conf.get("kafka_server", "localhost:9092"),
            info=info,
        )
