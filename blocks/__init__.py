"""Prefect blocks: stored configuration that hands out ready clients.

Register them all with ``prefect block register -m blocks``.
"""

from blocks.monitoring import Alertmanager, Prometheus
from blocks.notifications import DingTalkWebhook, FeishuWebhook, WeComWebhook
from blocks.ops_platform import OpsPlatform
from blocks.vault import VaultConnection, VaultSecret

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
