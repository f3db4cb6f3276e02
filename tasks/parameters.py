"""Pieces every runbook's parameter model uses: block fields and ordered thresholds.

A block field is typed by its block class, so the Prefect UI offers a picker of saved blocks;
from the command line, Python or `prefect deployment run` it also takes a saved block's name.

Example:
    >>> from typing import Annotated
    >>> from opsflow.blocks import Prometheus
    >>> class Params(StrictModel):
    ...     prometheus: Annotated[Prometheus | None, by_name(Prometheus)] = None
    >>> Params().prometheus is None
    True
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import BaseModel, BeforeValidator

from opsflow.opsapi.models import StrictModel

__all__ = ["DEFAULT_BLOCK_HELP", "StrictModel", "by_name", "not_above"]

DEFAULT_BLOCK_HELP = 'Empty: the block saved as "default".'


def by_name(block_type: type[Block]) -> BeforeValidator:
    """Let a block field also take the name of a saved block (``"lab"`` or
    ``"ops-platform/lab"``), loaded when the parameters are validated."""
    slug = block_type.get_block_type_slug()

    def load(value: Any) -> Any:
        if isinstance(value, dict) and value.get("_block_document_id"):
            # A block as a past run's parameters stored it (secrets masked): load it afresh.
            return block_type.load_from_ref(
                {"block_document_id": value["_block_document_id"]}, _sync=True
            )
        if not isinstance(value, str):
            return value
        name = value.removeprefix(f"{slug}/")
        try:
            return block_type.load(name, _sync=True)
        except ValueError:
            raise ValueError(
                f"no {block_type.get_block_type_name()} block named {name!r} is saved; "
                "check the name (prefect block ls) or save one"
            ) from None

    return BeforeValidator(load)


def not_above(model: BaseModel, lower: str, upper: str) -> None:
    """Refuse `lower` above `upper` (a recovery threshold above the trigger, say), naming both.

    Raises:
        ValueError: with the fix in the message.
    """
    low, high = getattr(model, lower), getattr(model, upper)
    if low > high:
        raise ValueError(
            f"{lower} ({low:g}) must not be above {upper} ({high:g}): "
            f"lower {lower} or raise {upper}"
        )
