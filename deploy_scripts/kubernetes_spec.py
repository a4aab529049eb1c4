"""What a ``KUBERNETES`` service runs: its image, namespace, labels and resources.

In the master's config a KUBERNETES service keeps the common keys (``command`` or
``module``, ``env``, ``min_instance``, ``max_instance``, ``source_topic``,
``group_id``) and puts the cluster's own settings under ``extra_configs``::

    [services.detector]
    provider = "KUBERNETES"
    version = "1.4"                            # the declared version's name
    module = "examples.autoscale.stage"        # runs as python3 -m ... in the image
    source_topic = "frames"
    group_id = "detector"
    max_instance = 4
    [services.detector.extra_configs]
    image = "registry.local/stage:1.4"         # required
    namespace = "vision"                       # default: "default"
    labels = { team = "vision" }               # added to the provider's own labels
    resources = { requests = { cpu = "250m", memory = "128Mi" },
                  limits = { cpu = "1", memory = "256Mi" } }
    image_pull_policy = "IfNotPresent"         # Always | IfNotPresent | Never
    service_account = "stage"
    node_selector = { "kubernetes.io/arch" = "arm64" }
    stop_timeout = 30                          # terminationGracePeriodSeconds
    control_key_secret = "fogverse-control"    # Secret with the key under "control-key"
    keda = { lag_threshold = 50 }              # for `fogverse k8s keda` (deploy_scripts/keda.py)

Each version of a service is a Deployment of its own, named from the service and
the version (:func:`deployment_name`), whose replicas are the instance count. The
declared service is the version ``version`` names (``"declared"`` unless set);
the other versions are ``ServiceVersion`` records (deploy_scripts/version.py),
applied by :func:`kubernetes_version`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from deploy_scripts.config import ServiceSpec
from deploy_scripts.version import ServiceVersion
from fogverse.errors import ConfigError

__all__ = [
    "CONTROL_KEY_SECRET_KEY",
    "KubernetesServiceSpec",
    "deployment_name",
    "image_version",
    "kubernetes_service",
    "kubernetes_version",
    "service_spec",
]

CONTROL_KEY_SECRET_KEY = "control-key"
"""The key inside ``control_key_secret`` whose value is the control key."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[mkMGTPE])?$")
_PULL_POLICIES = frozenset({"Always", "IfNotPresent", "Never"})
_RESOURCE_KINDS = frozenset({"requests", "limits"})

_NAME_MAX = 47
"""A Deployment's pods are named ``<deployment>-<10 hex>-<5 chars>``; 47 + 17 keeps
the pod's name a valid 63-character host name."""

EXTRA_KEYS = frozenset({
    "image", "namespace", "labels", "resources", "image_pull_policy",
    "service_account", "node_selector", "stop_timeout", "control_key_secret", "keda",
})  # fmt: skip


@dataclass(frozen=True)
class KubernetesServiceSpec:
    """How to run one version of a service as a Deployment.

    ``command`` None runs the image's own entrypoint. ``version`` None takes the
    image's tag (:func:`image_version`). Build one for another version with
    ``dataclasses.replace(spec, image=..., version=...)``: the provider starts an
    instance of whatever image the spec carries, in that version's Deployment.
    """

    name: str
    image: str
    version: str | None = None
    namespace: str = "default"
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    image_pull_policy: str | None = None
    service_account: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    stop_timeout: int = 30
    control_key_secret: str | None = None
    min_instance: int = 1
    max_instance: int = 1

    def __post_init__(self) -> None:
        where = f"KubernetesServiceSpec({self.name!r})"
        if not self.name or len(self.name) > 63 or not _LABEL_VALUE.match(self.name):
            raise ConfigError(f"{where}.name", self.name,
                              "a KUBERNETES service's name must be a label value: up to 63 "
                              "letters, digits, '-', '_' or '.', starting and ending alphanumeric")
        if not isinstance(self.image, str) or not self.image.strip():
            raise ConfigError(f"{where}.image", self.image, "a KUBERNETES service needs an image")
        if self.version is not None and (not isinstance(self.version, str)
                                         or not _slug(self.version)):
            raise ConfigError(f"{where}.version", self.version,
                              "expected a version name with at least one letter or digit")
        if not isinstance(self.namespace, str) or not _DNS_LABEL.match(self.namespace):
            raise ConfigError(f"{where}.namespace", self.namespace,
                              "expected a namespace name (lowercase letters, digits and '-')")
        if self.command is not None:
            object.__setattr__(self, "command", tuple(str(c) for c in self.command))
        if self.image_pull_policy is not None and self.image_pull_policy not in _PULL_POLICIES:
            raise ConfigError(f"{where}.image_pull_policy", self.image_pull_policy,
                              f"expected one of {', '.join(sorted(_PULL_POLICIES))}")
        stop = self.stop_timeout
        if isinstance(stop, bool) or not isinstance(stop, int) or stop < 0:
            raise ConfigError(f"{where}.stop_timeout", stop, "expected whole seconds >= 0")
        if not 0 <= self.min_instance <= self.max_instance:
            raise ConfigError(f"{where}.min_instance/max_instance",
                              (self.min_instance, self.max_instance),
                              "need 0 <= min_instance <= max_instance")
        object.__setattr__(self, "env", _strings(self.env))
        object.__setattr__(self, "labels", _labels(f"{where}.labels", self.labels))
        object.__setattr__(self, "node_selector",
                           _labels(f"{where}.node_selector", self.node_selector))
        object.__setattr__(self, "resources", _resources(f"{where}.resources", self.resources))

    @property
    def version_name(self) -> str:
        """The version as labels and names carry it (a hash keeps mangled names apart)."""
        if self.version is None:
            return image_version(self.image)
        return _name_slug(self.version, 63)


def deployment_name(spec: KubernetesServiceSpec) -> str:
    """``<service>-<version>``, lowercased, other characters as '-'; a hash ends a name
    that had to be cut. Names that differ only in case or punctuation meet in one
    Deployment; the provider refuses to share it (it checks the service, version and
    image the Deployment runs)."""
    return _name_slug(f"{spec.name}-{spec.version_name}", _NAME_MAX)


def image_version(image: str) -> str:
    """A version name from an image reference: its tag, or a digest's first hex, or latest."""
    repo, at, digest = image.partition("@")
    if at:
        return _slug(f"sha-{digest.partition(':')[2][:12]}") or "digest"
    last = repo.rsplit("/", 1)[-1]
    _, colon, tag = last.partition(":")
    return _slug(tag) if colon and _slug(tag) else "latest"


def _name_slug(text: str, limit: int) -> str:
    """``text`` as a DNS label of at most ``limit`` characters; cut ones end in a hash."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if slug and len(slug) <= limit:
        return slug
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{slug[:limit - 9].rstrip('-')}-{digest}".lstrip("-")


def _slug(text: str) -> str:
    """Lowercase letters, digits and single '-', at most 63 characters, no '-' at the ends."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:63].rstrip("-")


def _strings(values: Mapping[str, Any]) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in values.items()})


def _labels(where: str, values: Mapping[str, Any]) -> Mapping[str, str]:
    if not isinstance(values, Mapping):
        raise ConfigError(where, values, "expected a table of strings")
    out = _strings(values)
    for key, value in out.items():
        prefix, slash, name = key.rpartition("/")
        bad_prefix = slash and not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", prefix)
        if bad_prefix or len(name) > 63 or not _LABEL_NAME.match(name):
            raise ConfigError(where, key, "not a valid label key ([prefix/]name, name up to 63 "
                              "letters, digits, '-', '_' or '.')")
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ConfigError(where, value, f"not a valid label value for {key!r}")
    return out


def _resources(where: str, values: Mapping[str, Any]) -> Mapping[str, Mapping[str, str]]:
    if not isinstance(values, Mapping):
        raise ConfigError(where, values, "expected a table with requests and/or limits")
    out: dict[str, Mapping[str, str]] = {}
    for kind, table in values.items():
        if kind not in _RESOURCE_KINDS:
            raise ConfigError(f"{where}.{kind}", table, "expected requests or limits")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}.{kind}", table, "expected a table like {cpu = \"250m\"}")
        for resource, amount in table.items():
            if isinstance(amount, bool) or not _QUANTITY.match(str(amount)):
                raise ConfigError(f"{where}.{kind}.{resource}", amount,
                                  "expected a quantity such as 250m, 0.5, 128Mi or 1G")
        out[str(kind)] = _strings(table)
    return MappingProxyType(out)


def kubernetes_service(
    name: str,
    *,
    extra_configs: Mapping[str, Any],
    version: str | None = None,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    min_instance: int = 1,
    max_instance: int = 1,
) -> KubernetesServiceSpec:
    """A spec from a master config's service entry; errors name ``services.<name>...``."""
    where = f"services.{name}.extra_configs"
    unknown = sorted(set(extra_configs) - EXTRA_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", extra_configs[unknown[0]],
                          f"unknown key; known keys: {', '.join(sorted(EXTRA_KEYS))}")
    if "image" not in extra_configs:
        raise ConfigError(f"{where}.image", None, "a KUBERNETES service needs an image")
    text = {key: extra_configs.get(key) for key in ("namespace", "image_pull_policy",
                                                     "service_account", "control_key_secret")}
    for key, value in text.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}.{key}", value, "expected a string")
    try:
        return KubernetesServiceSpec(
            name=name, image=str(extra_configs["image"]), version=version,
            namespace=text["namespace"] or "default",
            command=None if command is None else tuple(command), env=env or {},
            labels=extra_configs.get("labels") or {},
            resources=extra_configs.get("resources") or {},
            image_pull_policy=text["image_pull_policy"],
            service_account=text["service_account"],
            node_selector=extra_configs.get("node_selector") or {},
            stop_timeout=extra_configs.get("stop_timeout", 30),
            control_key_secret=text["control_key_secret"],
            min_instance=min_instance, max_instance=max_instance,
        )  # fmt: skip
    except ConfigError as exc:
        # Re-name the setting the way the user wrote it.
        field_name = exc.setting.split(").", 1)[-1]
        why = str(exc)[len(f"invalid setting {exc.setting}={exc.value!r}: "):]
        raise ConfigError(f"{where}.{field_name}" if field_name != "name" else f"services.{name}",
                          exc.value, why) from None


def service_spec(svc: ServiceSpec) -> KubernetesServiceSpec:
    """The KUBERNETES spec of a declared service, as its declared version (``svc.version``).

    ``module`` runs as ``python3 -m module``."""
    return kubernetes_service(
        svc.name, extra_configs=svc.extra_configs, env=svc.env, version=svc.version,
        command=("python3", "-m", svc.module) if svc.module else svc.command,
        min_instance=svc.min_instance, max_instance=svc.max_instance,
    )  # fmt: skip


def kubernetes_version(
    spec: KubernetesServiceSpec, version: ServiceVersion | None
) -> KubernetesServiceSpec:
    """``spec`` as ``version`` runs it: its image (so its own Deployment), its command (a
    module runs as ``python3 -m``), its env over the declared one."""
    if version is None:
        return spec
    command = spec.command
    if version.module is not None:
        command = ("python3", "-m", version.module)
    elif version.command is not None:
        command = version.command
    return replace(spec, image=version.image or spec.image, version=version.name,
                   command=command, env={**spec.env, **version.env})
