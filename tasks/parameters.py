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

import re
from dataclasses import dataclass
from typing import Annotated, Any

from prefect.blocks.core import Block
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError

from opsflow.blocks import OpsPlatform, SaltAPI
from opsflow.opsapi.models import StrictModel

__all__ = [
    "PLATFORM_TYPES",
    "DEFAULT_BLOCK",
    "DEFAULT_BLOCK_HELP",
    "ByName",
    "NotifyBlock",
    "Platform",
    "StrictModel",
    "block_fields",
    "by_name",
    "not_above",
    "notify_block_field",
]

DEFAULT_BLOCK = "default"
DEFAULT_BLOCK_HELP = f'Empty: the block saved as "{DEFAULT_BLOCK}".'


@dataclass(frozen=True)
class ByName(BeforeValidator):
    """A block field's validator that also takes a saved block's name; `fallback` is the
    name used when the field is empty (None: empty means none, e.g. no Alertmanager)."""

    block_types: tuple[type[Block], ...] = ()
    fallback: str | None = None

    @property
    def kind(self) -> str:
        """What the field holds, for messages: "Ops Platform or Salt API"."""
        return " or ".join(t.get_block_type_name() for t in self.block_types)


def block_fields(model: type[BaseModel]) -> dict[str, ByName]:
    """The model's block fields, by name, with their validators (for the command line)."""
    return {
        name: meta
        for name, field in model.model_fields.items()
        for meta in field.metadata
        if isinstance(meta, ByName)
    }


def by_name(*block_types: type[Block], fallback: str | None = DEFAULT_BLOCK) -> ByName:
    """Let a block field also take the name of a saved block, loaded when the parameters are
    validated: ``"salt-api/lab"`` names the type; a bare ``"lab"`` is the first of
    `block_types` that has a block of that name."""

    def load(value: Any) -> Any:
        return load_block(value, block_types)

    return ByName(load, block_types=block_types, fallback=fallback)


def load_block(value: Any, block_types: tuple[type[Block], ...]) -> Any:
    """A block from a name, a `slug/name`, or a past run's stored block (loaded afresh)."""
    if isinstance(value, dict) and value.get("_block_document_id"):
        # A block as a past run's parameters stored it (secrets masked): load it afresh.
        chosen = next(
            (t for t in block_types if t.get_block_type_slug() == value.get("block_type_slug")),
            block_types[0],
        )
        return chosen.load_from_ref({"block_document_id": value["_block_document_id"]}, _sync=True)
    if not isinstance(value, str):
        return value
    slug, _, rest = value.partition("/")
    typed = [t for t in block_types if t.get_block_type_slug() == slug]
    candidates, name = (typed, rest) if typed and rest else (list(block_types), value)
    for block_type in candidates:
        try:
            return block_type.load(name, _sync=True)
        except ValueError:
            continue
        except RuntimeError as exc:  # saved, but not valid as this version reads it
            if not isinstance(exc.__cause__, ValidationError):
                raise
            said = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.__cause__.errors())
            raise ValueError(
                f"the saved {block_type.get_block_type_name()} block {name!r} is not valid: "
                f"{said} (correct it in the Prefect UI, or save it again)"
            ) from None
    kinds = " or ".join(t.get_block_type_name() for t in candidates)
    raise ValueError(
        f"no {kinds} block named {name!r} is saved; check the name (prefect block ls) or save one"
    )


# The execution backends a runbook's `platform` may be: the seed-style platform first (a bare
# block name is looked up in this order), then SaltStack.
PLATFORM_TYPES: tuple[type[Block], ...] = (OpsPlatform, SaltAPI)
Platform = Annotated[OpsPlatform | SaltAPI | None, by_name(*PLATFORM_TYPES)]


def _block_slug_and_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]*/\S.*", value):
        raise ValueError(
            f"{value!r} is not '<block-type-slug>/<name>', e.g. wecom-webhook/ops "
            "(prefect block ls lists the saved blocks)"
        )
    return value


NotifyBlock = Annotated[str | None, AfterValidator(_block_slug_and_name)]


def notify_block_field() -> Any:
    """The `notify_block` parameter every runbook has."""
    return Field(
        default=None,
        description="Notification block told how the run ended, as its type slug and name, "
        "e.g. wecom-webhook/ops or slack-webhook/sre.",
    )


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
