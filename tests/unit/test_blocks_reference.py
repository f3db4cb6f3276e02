"""docs/blocks.md is what `python -m opsflow.blocks.reference` writes: every block's fields as
the code has them."""

from __future__ import annotations

from pathlib import Path

from opsflow.blocks.reference import BLOCKS, reference

DOC = Path(__file__).parents[2] / "docs" / "blocks.md"


def test_the_reference_is_current() -> None:
    assert DOC.read_text() == reference(), (
        "docs/blocks.md is stale: .venv/bin/python -m opsflow.blocks.reference > docs/blocks.md"
    )


def test_every_field_of_every_block_is_listed() -> None:
    text = DOC.read_text()
    for block in BLOCKS:
        for name, info in block.model_fields.items():
            if not info.exclude:
                assert f"| `{name}` |" in text, (block.__name__, name)
