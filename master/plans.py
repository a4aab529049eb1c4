"""From declared services and incoming requests to the plans the auto-deployer follows.

A request is a wish, the config is the law: only a declared service is ever
deployed, never with more instances than its ``max_instance`` nor fewer than its
``min_instance`` (a request that does not say ``max_instance`` keeps the declared
one), and a request's
``extra_configs`` only fill keys the config leaves open (``env``, ``args`` and
the version never: they would let any producer on the control topic choose what
a LOCAL child runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploy_scripts import DeployConfig, ServiceSpec
from fogverse.constants import EXTRA_VERSION, PROVIDER_LOCAL
from fogverse.control import AutoScaleRequest
from fogverse.errors import FogVerseError
from workers.registry import StageKey

__all__ = [
    "PROTECTED_EXTRA_KEYS",
    "RequestRefused",
    "RequestRefusedError",
    "StagePlan",
    "plan_for_request",
    "plan_for_service",
]

PROTECTED_EXTRA_KEYS = frozenset({"env", "args", EXTRA_VERSION})


@dataclass(frozen=True)
class StagePlan:
    """What the master may do for one stage: which service, within which limits."""

    stage: StageKey
    service_name: str
    provider: str = PROVIDER_LOCAL
    min_instance: int = 1
    max_instance: int = 1
    group_id: str | None = None
    extra_configs: Mapping[str, Any] = field(default_factory=dict)
    grow_partitions: bool = True
    """Whether the master may add partitions to the source topic: only when the
    config names it (a request alone must not make the master touch any topic)."""

    def deploy_config(self) -> DeployConfig:
        """FogVerse's DeployConfig for one more instance of this stage."""
        return {
            "provider": self.provider, "service_name": self.service_name,
            "max_instance": self.max_instance, "min_instance": self.min_instance,
            "extra_configs": dict(self.extra_configs),
        }


class RequestRefusedError(FogVerseError):
    """An auto-scale request the master will not follow; ``reason`` is a short label."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


RequestRefused = RequestRefusedError
"""The earlier name, kept so existing ``except`` clauses still catch it."""


def plan_for_service(svc: ServiceSpec) -> StagePlan | None:
    """The plan a service declares by naming its topics; None if it names no source."""
    if svc.source_topic is None:
        return None
    return StagePlan(
        stage=(svc.source_topic, svc.target_topic), service_name=svc.name,
        provider=svc.provider, min_instance=svc.min_instance, max_instance=svc.max_instance,
        group_id=svc.group_id, extra_configs=dict(svc.extra_configs),
    )


def plan_for_request(
    request: AutoScaleRequest, services: Mapping[str, ServiceSpec]
) -> StagePlan:
    """The plan for ``request`` within its service's limits, or RequestRefusedError."""
    svc = services.get(request.service_name)
    if svc is None:
        known = ", ".join(sorted(services)) or "none"
        raise RequestRefusedError(
            "undeclared_service",
            f"service {request.service_name!r} is not declared in the master's config "
            f"(declared: {known}); to allow it, add to the master's config dict (the "
            f"service line inside 'services' if you have one):\n"
            f"{declaration_for(request)}",
        )
    if request.provider != svc.provider:
        raise RequestRefusedError(
            "provider_mismatch",
            f"request for {svc.name!r} names provider {request.provider!r}; the config "
            f"says {svc.provider!r}",
        )
    declared = (svc.source_topic, svc.target_topic)
    asked = (request.source_topic, request.target_topic)
    if svc.source_topic is not None and declared != asked:
        raise RequestRefusedError(
            "topic_mismatch",
            f"request for {svc.name!r} names topics {asked}; the config says {declared}",
        )
    # The declared limits win: a request narrows them, never widens or breaks them.
    asked_max = svc.max_instance if request.max_instance is None else request.max_instance
    high = max(min(asked_max, svc.max_instance), svc.min_instance)
    low = svc.min_instance if request.min_instance is None else request.min_instance
    low = min(max(low, svc.min_instance), high)
    return StagePlan(
        stage=asked, service_name=svc.name, provider=svc.provider,
        min_instance=low, max_instance=high,
        group_id=request.group_id or svc.group_id,
        extra_configs=_merge_extra(svc.extra_configs, request.extra_configs),
        grow_partitions=svc.source_topic is not None,
    )


def _merge_extra(declared: Mapping[str, Any], asked: Mapping[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in asked.items() if k not in PROTECTED_EXTRA_KEYS}
    merged.update(declared)
    return merged


def declaration_for(request: AutoScaleRequest) -> str:
    """The lines that declare what ``request`` asks for, to paste into the config dict."""
    high = max(request.max_instance if request.max_instance is not None else 1, 1)
    low = min(request.min_instance if request.min_instance is not None else 1, high)
    fields: dict[str, object] = {"provider": request.provider, "min_instance": low,
                                 "max_instance": high}
    if request.source_topic:
        fields["source_topic"] = request.source_topic
    if request.target_topic:
        fields["target_topic"] = request.target_topic
    extra = {k: v for k, v in request.extra_configs.items() if k not in PROTECTED_EXTRA_KEYS}
    if extra:
        fields["extra_configs"] = extra
    body = ", ".join(f"{k!r}: {v!r}" for k, v in fields.items())
    return f"'services': {{\n    {request.service_name!r}: {{{body}}},\n}},"
