"""A KEDA ScaledObject for a KUBERNETES service, for users who let KEDA scale instead.

KEDA's Kafka scaler adds replicas while the consumer group's lag per replica is
over ``lagThreshold``; it needs the topic and group the stage reads, and the
brokers as the cluster reaches them. The Master must then leave that service
alone (do not run its auto-deployer for it): two scalers on one Deployment fight.
Settings live in the service's ``extra_configs.keda`` table::

    keda = { lag_threshold = 50, polling_interval = 15, cooldown_period = 120,
             bootstrap_servers = "kafka.kafka:9092", authentication_ref = "kafka-sasl" }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from deploy_scripts.kubernetes_manifest import object_labels
from deploy_scripts.kubernetes_spec import KubernetesServiceSpec, deployment_name
from fogverse.errors import ConfigError

__all__ = ["KedaSettings", "keda_settings", "scaled_object"]

_OFFSET_POLICIES = frozenset({"earliest", "latest"})


@dataclass(frozen=True)
class KedaSettings:
    """The Kafka trigger's knobs; None leaves KEDA's own default.

    ``offset_reset_policy`` is ``earliest`` like a fogverse stage's new group
    (KEDA's default is ``latest``, which counts no lag for a group with no offsets).
    """

    lag_threshold: int = 10
    activation_lag_threshold: int | None = None
    offset_reset_policy: str = "earliest"
    polling_interval: int | None = None
    cooldown_period: int | None = None
    bootstrap_servers: str | None = None
    """The brokers as pods reach them; default: the Master's ``consumer_servers``."""
    authentication_ref: str | None = None
    """A KEDA TriggerAuthentication's name, for SASL or TLS brokers."""


_INTS = ("lag_threshold", "activation_lag_threshold", "polling_interval", "cooldown_period")
_STRS = ("offset_reset_policy", "bootstrap_servers", "authentication_ref")


def keda_settings(service: str, raw: object) -> KedaSettings:
    """Settings from ``services.<service>.extra_configs.keda``; errors name the key."""
    where = f"services.{service}.extra_configs.keda"
    if raw is None:
        return KedaSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError(where, raw, "expected a table")
    known = {f.name for f in fields(KedaSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", raw[unknown[0]],
                          f"unknown key; known keys: {', '.join(sorted(known))}")
    for key in _INTS:
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < (1 if key == "lag_threshold" else 0)):
            raise ConfigError(f"{where}.{key}", value, "expected a whole number >= "
                              f"{1 if key == 'lag_threshold' else 0}")
    for key in _STRS:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{where}.{key}", value, "expected a non-empty string")
    policy = raw.get("offset_reset_policy", "earliest")
    if policy not in _OFFSET_POLICIES:
        raise ConfigError(f"{where}.offset_reset_policy", policy, "expected earliest or latest")
    return KedaSettings(**dict(raw))


def scaled_object(
    spec: KubernetesServiceSpec,
    *,
    topic: str,
    group: str,
    bootstrap_servers: str,
    master_id: str,
    keda: KedaSettings | None = None,
) -> dict[str, Any]:
    """The ScaledObject (keda.sh/v1alpha1) scaling ``spec``'s Deployment on ``group``'s lag.

    Replicas stay within the service's ``min_instance`` and ``max_instance``.
    """
    keda = keda or KedaSettings()
    name = deployment_name(spec)
    trigger_meta = {
        "bootstrapServers": keda.bootstrap_servers or bootstrap_servers,
        "consumerGroup": group,
        "topic": topic,
        # KEDA reads trigger metadata as strings.
        "lagThreshold": str(keda.lag_threshold),
        "offsetResetPolicy": keda.offset_reset_policy,
    }
    if keda.activation_lag_threshold is not None:
        trigger_meta["activationLagThreshold"] = str(keda.activation_lag_threshold)
    trigger: dict[str, Any] = {"type": "kafka", "metadata": trigger_meta}
    if keda.authentication_ref:
        trigger["authenticationRef"] = {"name": keda.authentication_ref}
    body: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicaCount": spec.min_instance,
        "maxReplicaCount": spec.max_instance,
    }
    if keda.polling_interval is not None:
        body["pollingInterval"] = keda.polling_interval
    if keda.cooldown_period is not None:
        body["cooldownPeriod"] = keda.cooldown_period
    body["triggers"] = [trigger]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": spec.namespace,
                     "labels": object_labels(spec, master_id)},
        "spec": body,
    }
