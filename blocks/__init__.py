"""Prefect blocks: stored configuration that hands out ready clients.

Register them all with ``opsflow blocks register``.
"""

from opsflow.blocks.backend import ExecutionBackendBlock, backend_block_types
from opsflow.blocks.monitoring import Alertmanager, Prometheus
from opsflow.blocks.notifications import DingTalkWebhook, FeishuWebhook, WeComWebhook
from opsflow.blocks.ops_platform import OpsPlatform
from opsflow.blocks.salt_api import SaltAPI
from opsflow.blocks.strict import StrictBlock
from opsflow.blocks.transport import transport_field
from opsflow.blocks.vault import VaultConnection, VaultSecret, from_vault_field

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
    "backend_block_types",
    "from_vault_field",
    "transport_field",
]
