"""opsflow's blocks file themselves with Prefect under the same key and checksum Prefect's own
code computes, without building each block's whole schema again on every process start."""

from __future__ import annotations

from abc import ABC

import pytest
from inhouse_backend import InHousePlatform
from prefect.blocks.core import Block, block_schema_to_key
from prefect.utilities.dispatch import lookup_type

import opsflow.blocks
from opsflow.blocks.strict import StrictBlock

BLOCKS = sorted(
    {
        cls
        for cls in [*vars(opsflow.blocks).values(), InHousePlatform]
        if isinstance(cls, type) and issubclass(cls, StrictBlock) and ABC not in cls.__bases__
    },
    key=lambda cls: cls.__name__,
)


def prefects_own_checksum(cls: type[Block]) -> str:
    return Block.__dict__["_calculate_schema_checksum"].__func__(cls)


def test_every_block_type_is_covered() -> None:
    assert {"OpsPlatform", "SaltAPI", "Prometheus", "VaultSecret", "InHousePlatform"} <= {
        cls.__name__ for cls in BLOCKS
    }


@pytest.mark.parametrize("cls", BLOCKS, ids=lambda cls: cls.__name__)
def test_its_dispatch_key_and_checksum_are_prefects(cls: type[Block]) -> None:
    assert cls.__dispatch_key__() == block_schema_to_key(cls._to_block_schema())
    assert lookup_type(Block, cls.__dispatch_key__()) is cls
    assert cls._calculate_schema_checksum() == prefects_own_checksum(cls)
    assert cls._calculate_schema_checksum() == cls._calculate_schema_checksum()  # cached
