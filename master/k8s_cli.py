"""``fogverse k8s keda|deployment SERVICE``: a KUBERNETES service's objects, for kubectl.

Both read the service from the Master's config, so what KEDA scales and what the
Master would deploy come from one declaration::

    fogverse k8s deployment detector --config master.toml | kubectl apply -f -
    fogverse k8s keda detector --config master.toml | kubectl apply -f -
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

import yaml

from deploy_scripts.keda import keda_settings, scaled_object
from deploy_scripts.kubernetes_manifest import deployment_body
from deploy_scripts.kubernetes_spec import KubernetesServiceSpec, service_spec
from fogverse.constants import PROVIDER_KUBERNETES
from fogverse.errors import ConfigError
from master.config import MasterSettings, load_master_config, master_settings
from master.wiring import stage_env

__all__ = ["keda_object", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "k8s",
        help="print Kubernetes objects (Deployment, KEDA ScaledObject) for a KUBERNETES service",
        description="Print a KUBERNETES service's objects as YAML (or JSON) for kubectl apply, "
        "from its declaration in the Master's config.",
    )
    kinds = parser.add_subparsers(title="objects", metavar="OBJECT", required=True)
    keda = kinds.add_parser(
        "keda", help="a KEDA ScaledObject scaling the service on its consumer group's lag",
        description="A ScaledObject with a Kafka trigger (the service's source_topic and "
        "group_id, extra_configs.keda.lag_threshold) and replicas within min_instance and "
        "max_instance. Let either KEDA or the Master scale a service, not both.",
    )
    keda.add_argument("--bootstrap", help="Kafka as pods reach it (default: extra_configs.keda."
                      "bootstrap_servers, else the config's consumer_servers)")
    keda.set_defaults(func=_run_keda)
    deployment = kinds.add_parser(
        "deployment", help="the Deployment the KUBERNETES provider creates for the service",
        description="The Deployment of the service's declared version, as the provider "
        "creates it (one replica unless --replicas).",
    )
    deployment.add_argument("--replicas", type=int, default=1)
    deployment.set_defaults(func=_run_deployment)
    for sub in (keda, deployment):
        sub.add_argument("service", help="a service declared with provider = \"KUBERNETES\"")
        sub.add_argument("--config", help="master.toml (default: built-in defaults)")
        sub.add_argument("--json", action="store_true", help="print JSON instead of YAML")


def keda_object(settings: MasterSettings, service: str,
                bootstrap: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The ScaledObject for ``service`` as ``settings`` declare it.

    Brokers: ``bootstrap``, else the service's ``keda.bootstrap_servers``, else the
    Master's ``consumer_servers``."""
    spec = _spec(settings, service)
    svc = settings.services[service]
    for key, value, why in (("source_topic", svc.source_topic, "the topic the stage reads"),
                            ("group_id", svc.group_id, "the stage's consumer group")):
        if not value:
            raise ConfigError(f"services.{service}.{key}", value,
                              f"KEDA's Kafka trigger needs {why}; declare it")
    assert svc.source_topic and svc.group_id
    keda = keda_settings(service, svc.extra_configs.get("keda"))
    if bootstrap:
        keda = replace(keda, bootstrap_servers=bootstrap)
    return scaled_object(
        spec, topic=svc.source_topic, group=svc.group_id, keda=keda,
        bootstrap_servers=settings.consumer_servers,
        master_id=settings.consumer_group_id)


def _spec(settings: MasterSettings, service: str) -> KubernetesServiceSpec:
    svc = settings.services.get(service)
    if svc is None:
        raise ConfigError("service", service, "not declared under services; declared: "
                          f"{', '.join(sorted(settings.services)) or 'none'}")
    if svc.provider != PROVIDER_KUBERNETES:
        raise ConfigError(f"services.{service}.provider", svc.provider,
                          f"only a {PROVIDER_KUBERNETES} service has Kubernetes objects")
    return service_spec(svc)


def _settings(args: argparse.Namespace) -> MasterSettings:
    return load_master_config(args.config) if args.config else master_settings({})


def _print(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, indent=2))
    else:
        print(yaml.safe_dump(obj, sort_keys=False), end="")


def _run_keda(args: argparse.Namespace) -> int:
    _print(keda_object(_settings(args), args.service, args.bootstrap), args.json)
    return 0


def _run_deployment(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.replicas < 0:
        raise ConfigError("--replicas", args.replicas, "expected 0 or more")
    body = deployment_body(_spec(settings, args.service), stage_env(settings),
                           settings.consumer_group_id, replicas=args.replicas)
    _print(body, args.json)
    return 0
