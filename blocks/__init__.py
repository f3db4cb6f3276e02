"""Prefect blocks: stored configuration that hands out ready clients.

Register them all with ``prefect block register -m blocks``.
"""

from blocks.monitoring import Alertmanager, Prometheus
from blocks.ops_platform import OpsPlatform
from blocks.vault import VaultConnection, VaultSecret

__all__ = ["Alertmanager", "OpsPlatform", "Prometheus", "VaultConnection", "VaultSecret"]
