"""Registering opsflow's block types with a Prefect API, in this process.

Example:
    >>> from opsflow.blocks.registration import BLOCK_TYPES
    >>> sorted(b.get_block_type_slug() for b in BLOCK_TYPES)[:2]
    ['alertmanager', 'dingtalk-webhook']
"""

from __future__ import annotations

from prefect.blocks.core import Block

from opsflow.blocks.monitoring import Alertmanager, Prometheus
from opsflow.blocks.notifications import DingTalkWebhook, FeishuWebhook, WeComWebhook
from opsflow.blocks.ops_platform import OpsPlatform
from opsflow.blocks.salt_api import SaltAPI
from opsflow.blocks.vault import VaultConnection, VaultSecret

BLOCK_TYPES: tuple[type[Block], ...] = (
    Alertmanager,
    DingTalkWebhook,
    FeishuWebhook,
    OpsPlatform,
    Prometheus,
    SaltAPI,
    VaultConnection,
    VaultSecret,
    WeComWebhook,
)


def register_block_types() -> list[str]:
    """Register (or update) every opsflow block type and schema; return their slugs."""
    for block_type in BLOCK_TYPES:
        block_type.register_type_and_schema()
    return [b.get_block_type_slug() for b in BLOCK_TYPES]
