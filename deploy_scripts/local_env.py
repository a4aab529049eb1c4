"""The environment a LOCAL instance starts with: an allow-list, never the Master's whole one.

The Master's environment holds whatever its operator exported (cloud keys, tokens,
database passwords); a stage needs none of it unless its service says so. A child
gets, in this order, each later layer winning:

1. the allow-listed variables of the Master's environment
   (:mod:`fogverse.child_env`, shared with the node agent's children): what finds
   programs and libraries, locale and time zone, the Python set-up, the cluster's
   address and client choice, CA bundles;
2. what the Master passes on purpose (``base_env``: the bootstrap address and, when
   there is one, the control key);
3. the service's declared ``env``, then the declared ``extra_configs['env']``;
4. the instance's own ``FOGVERSE_INSTANCE_ID`` and ``FOGVERSE_SERVICE_NAME``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from deploy_scripts.config import DeployConfig
from deploy_scripts.errors import DeployError
from fogverse.child_env import INHERITED_ENV, INHERITED_PREFIXES, inherited
from fogverse.constants import ENV_INSTANCE_ID, ENV_SERVICE_NAME

__all__ = ["INHERITED_ENV", "INHERITED_PREFIXES", "child_env", "declared_env"]


def declared_env(config: DeployConfig) -> dict[str, str]:
    """``extra_configs['env']`` of a deploy config, as strings."""
    raw = (config.get("extra_configs") or {}).get("env", {})
    if not isinstance(raw, Mapping):
        raise DeployError(f"extra_configs['env'] must be a mapping, got {type(raw).__name__}")
    return {str(key): str(value) for key, value in raw.items()}


def child_env(
    master_env: Mapping[str, str],
    *,
    inherit: Iterable[str],
    layers: Iterable[Mapping[str, str]],
    instance_id: str,
    service: str,
) -> dict[str, str]:
    """The environment of one instance (see the module docstring for the order)."""
    env = inherited(master_env, inherit)
    for layer in layers:
        env.update(layer)
    env[ENV_INSTANCE_ID] = instance_id
    env[ENV_SERVICE_NAME] = service
    return env
