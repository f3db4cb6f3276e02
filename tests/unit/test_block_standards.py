"""Prefect's own standards for collection blocks, over every opsflow block type."""

from __future__ import annotations

from abc import ABC

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from opsflow.blocks import ExecutionBackendBlock, StrictBlock
from opsflow.blocks.notifications import ChatWebhookBlock
from opsflow.blocks.registration import BLOCK_TYPES


@pytest.mark.parametrize("block", BLOCK_TYPES, ids=lambda b: b.__name__)
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block


def test_every_block_in_the_package_is_registered():
    import opsflow.blocks as package

    exported = {getattr(package, name) for name in package.__all__}
    blocks = {b for b in exported if isinstance(b, type) and issubclass(b, Block)}
    interfaces = {b for b in blocks if ABC in b.__bases__}  # Prefect registers no type for them
    assert blocks - interfaces == set(BLOCK_TYPES)


def test_the_bases_are_interfaces_and_no_block_type():
    from prefect.utilities.dispatch import get_registry_for_type

    registered = get_registry_for_type(Block).values()
    assert not {ChatWebhookBlock, ExecutionBackendBlock, StrictBlock} & set(registered)
    assert all(b in registered for b in BLOCK_TYPES)
    with pytest.raises(TypeError):
        ChatWebhookBlock()  # type: ignore[abstract]
