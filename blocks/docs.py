"""Where each block's documentation lives (Prefect shows the link on the block's page)."""

from __future__ import annotations

from pydantic import HttpUrl

DOCS = "https://github.com/opsflow/opsflow/blob/main/README.md"


def docs_url(anchor: str) -> HttpUrl:
    """The README section for a block, e.g. ``docs_url("blocks")``."""
    return HttpUrl(f"{DOCS}#{anchor}")


def code_example(block: str, use: str) -> str:
    """The code example Prefect shows on a block type's page: load by name, then use it."""
    variable = "".join(f"_{c.lower()}" if c.isupper() else c for c in block).lstrip("_")
    return (
        "```python\n"
        f"from opsflow.blocks import {block}\n\n"
        f'{variable} = {block}.load("BLOCK_NAME")\n'
        f"{use.format(var=variable)}\n"
        "```"
    )
