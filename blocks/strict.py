"""Blocks that refuse a setting they do not have, and still load what earlier versions saved.

A typo in a block is a setting silently gone: `OpsPlatform(url=..., tokn="...")` would be a
platform with no token. Every opsflow block (and every backend block built on
`ExecutionBackendBlock`) refuses an unknown key, built by hand or read from a saved document,
naming the closest known one, as the runbooks' parameters do. The only keys an earlier
opsflow saved that no longer are fields, the transport settings once at a block's top level
(`timeout`, `ca_cert`, `verify_tls`, ...), are moved into its `transport`, so those documents
still load with every setting they had.

Example:
    >>> from opsflow.blocks import Prometheus
    >>> Prometheus(url="http://prometheus:9090", bearer_tokn="x")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Prometheus
      Value error, unknown field 'bearer_tokn' — did you mean 'bearer_token'? ...
"""

from __future__ import annotations

from abc import ABC
from typing import Any

from prefect.blocks.core import Block
from pydantic import model_validator

from opsflow.opsapi.models import unknown_field_message
from opsflow.opsapi.transport import Transport

# What a saved block document holds beside its fields (a nested block's reference too).
_DOCUMENT_KEYS = {"block_type_slug", "_block_document_id", "_block_document_name", "_is_anonymous"}


class StrictBlock(Block, ABC):
    """A block that refuses unknown keys (an interface: it has no block type of its own).

    Example:
        >>> class Inventory(StrictBlock):
        ...     url: str
        >>> Inventory(url="https://cmdb", tag="web")
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for Inventory
          Value error, unknown field 'tag' — known fields: url ...
    """

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
        unknown = [key for key in data if key not in fields | _DOCUMENT_KEYS]
        data = _transport_moved_in(cls, data, unknown)
        unknown = [key for key in unknown if key in data]
        if unknown:
            raise ValueError(
                "; ".join(unknown_field_message(str(key), sorted(fields)) for key in unknown)
            )
        return data


def _transport_moved_in(cls: type[Block], data: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """`data` with the transport settings among `keys` (where earlier versions saved them)
    moved into the block's `transport`: over its defaults, under a `transport` the document
    also has (Prefect keeps old keys when a block is saved over, and the nested one is newer)."""
    field = cls.model_fields.get("transport")
    moved = [key for key in keys if key in Transport.model_fields] if field else []
    if not field or not moved:
        return data
    flat = {key: data[key] for key in moved}
    kept = {key: value for key, value in data.items() if key not in moved}
    if "transport" in data:
        saved = data["transport"]
        nested = saved.model_dump() if isinstance(saved, Transport) else dict(saved)
        return {**kept, "transport": {**flat, **nested}}
    defaults = field.get_default(call_default_factory=True).model_dump()
    return {**kept, "transport": {**defaults, **flat}}
