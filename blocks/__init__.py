"""Prefect blocks: stored configuration that hands out ready clients.

Register them all with ``prefect block register -m blocks``.
"""

from opsflow.blocks.monitoring import Alertmanager, Prometheus
from opsflow.blocks.notifications import DingTalkWebhook, FeishuWebhook, WeComWebhook
from opsflow.blocks.ops_platform import OpsPlatform
from opsflow.blocks.vault import VaultConnection, VaultSecret

__all__ = [
    "Alertmanager",
    "DingTalkWebhook",
    "FeishuWebhook",
    "OpsPlatform",
    "Prometheus",
    "VaultConnection",
    "VaultSecret",
    "WeComWebhook",
]
