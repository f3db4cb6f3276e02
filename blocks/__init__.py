"""Prefect blocks: stored configuration that hands out ready clients.

Register them all with ``opsflow blocks register``.
"""

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.blocks.monitoring import Alertmanager, Prometheus
from opsflow.blocks.notifications import DingTalkWebhook, FeishuWebhook, WeComWebhook
from opsflow.blocks.ops_platform import OpsPlatform
from opsflow.blocks.salt_api import SaltAPI
from opsflow.blocks.strict import StrictBlock
from opsflow.blocks.vault import VaultConnection, VaultSecret

__all__ = [
    "Alertmanager",
    "DingTalkWebhook",
    "ExecutionBackendBlock",
    "FeishuWebhook",
    "OpsPlatform",
    "Prometheus",
    "SaltAPI",
    "StrictBlock",
    "VaultConnection",
    "VaultSecret",
    "WeComWebhook",
]
