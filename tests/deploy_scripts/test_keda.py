"""KEDA ScaledObjects: the Kafka trigger and the replica bounds from a service's declaration."""

from __future__ import annotations

import pytest

from deploy_scripts.keda import KedaSettings, keda_settings, scaled_object
from deploy_scripts.kubernetes_spec import KubernetesServiceSpec
from fogverse.errors import ConfigError

SPEC = KubernetesServiceSpec("detector", "reg/stage:2", namespace="vision", min_instance=0,
                             max_instance=8)  # fmt: skip


def test_every_trigger_setting_lands_where_keda_reads_it() -> None:
    keda = keda_settings("detector", {
        "lag_threshold": 100, "activation_lag_threshold": 5, "offset_reset_policy": "latest",
        "polling_interval": 15, "authentication_ref": "kafka-sasl"})  # fmt: skip
    obj = scaled_object(SPEC, topic="frames", group="det", bootstrap_servers="k:9092",
                        master_id="m", keda=keda)  # fmt: skip
    assert obj["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "detector-2"},
        "minReplicaCount": 0,
        "maxReplicaCount": 8,
        "pollingInterval": 15,
        "triggers": [{
            "type": "kafka",
            "metadata": {"bootstrapServers": "k:9092", "consumerGroup": "det",
                         "topic": "frames", "lagThreshold": "100",
                         "offsetResetPolicy": "latest", "activationLagThreshold": "5"},
            "authenticationRef": {"name": "kafka-sasl"},
        }],
    }  # fmt: skip


def test_no_keda_table_means_keda_defaults_but_earliest_offsets() -> None:
    assert keda_settings("detector", None) == KedaSettings(lag_threshold=10,
                                                           offset_reset_policy="earliest")


@pytest.mark.parametrize(
    ("raw", "setting"),
    [({"lagThreshold": 5}, "services.d.extra_configs.keda.lagThreshold"),
     ({"lag_threshold": 0}, "services.d.extra_configs.keda.lag_threshold"),
     ({"lag_threshold": "5"}, "services.d.extra_configs.keda.lag_threshold"),
     ({"offset_reset_policy": "none"}, "services.d.extra_configs.keda.offset_reset_policy"),
     ({"bootstrap_servers": ""}, "services.d.extra_configs.keda.bootstrap_servers"),
     ([1], "services.d.extra_configs.keda")],
)
def test_a_bad_keda_setting_is_named(raw: object, setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        keda_settings("d", raw)
    assert caught.value.setting == setting
