"""Before a rollout starts: can any node the version would land on meet its needs?

The nodes are the scheduler's: this machine for the providers that run instances
where the master runs (LOCAL, DOCKER), the registered agents for AGENT. A
provider whose nodes the master does not know (KUBERNETES, a user's) is not
checked, and the log says so.
"""

from __future__ import annotations

import logging

from deploy_scripts import ServiceSpec, ServiceVersion
from fogverse.constants import PROVIDER_AGENT, SINGLE_NODE_PROVIDERS
from master.fog import FogScheduler
from master.scheduling.validation import unmet_needs

__all__ = ["NeedsCheck"]

log = logging.getLogger("fogverse.master.rollout")


class NeedsCheck:
    """``check(service, version)``: why no node can take it, or None."""

    def __init__(self, fog: FogScheduler) -> None:
        self._fog = fog

    def __call__(self, svc: ServiceSpec, version: ServiceVersion) -> str | None:
        needs = version.needs
        if not needs.any:
            return None
        nodes = self._candidates(svc.provider)
        if nodes is None:
            log.info("%s: the needs of %s are not checked: the master does not know the"
                     " nodes of provider %s", svc.name, version.name, svc.provider)
            return None
        if not nodes:
            return f"no {svc.provider} node is known"
        lacks = {}
        for node_id in nodes:
            record = self._fog.core.nodes.get(node_id)
            if record is None:
                continue
            why = unmet_needs(record.capacity, cpu=needs.cpu, memory_mb=needs.memory_mb,
                              gpu=needs.gpu, min_battery=needs.min_battery,
                              max_thermal=needs.max_thermal)
            if not why:
                return None
            lacks[node_id] = "; ".join(why)
        return ", ".join(f"{n}: {why}" for n, why in sorted(lacks.items())) or "no node known"

    def _candidates(self, provider: str) -> list[str] | None:
        local = self._fog.local_node_id
        if provider in SINGLE_NODE_PROVIDERS:
            return [local] if local is not None else []
        if provider == PROVIDER_AGENT:
            return [n for n in self._fog.core.nodes if n != local]
        return None
