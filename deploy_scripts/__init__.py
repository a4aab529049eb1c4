"""Deploy providers: how the master starts and stops stage instances.

``DeployScripts`` maps a provider name (``"LOCAL"``, ``"DOCKER"``, your own) to a
deploy function, FogVerse-style; ``LocalProvider`` is the built-in ``LOCAL``
one, starting declared services as child processes of this host.
"""

from deploy_scripts.config import DeployConfig, ServiceSpec
from deploy_scripts.errors import DeployError, UnknownProviderError, UnknownServiceError
from deploy_scripts.local import LocalProvider
from deploy_scripts.registry import AdoptFunction, DeployFunction, DeployScripts
from deploy_scripts.result import DeployResult
from deploy_scripts.version import ServiceVersion, VersionNeeds

__all__ = [
    "AdoptFunction",
    "DeployConfig",
    "DeployError",
    "DeployFunction",
    "DeployResult",
    "DeployScripts",
    "LocalProvider",
    "ServiceSpec",
    "ServiceVersion",
    "UnknownProviderError",
    "UnknownServiceError",
    "VersionNeeds",
]
