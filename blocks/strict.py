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

import logging
import weakref
from abc import ABC
from contextvars import ContextVar
from typing import Any

from prefect.blocks.core import Block
from pydantic import ConfigDict, model_validator

from opsflow.opsapi.models import unknown_field_message
from opsflow.opsapi.transport import Transport

logger = logging.getLogger("opsflow.blocks")

# What a saved block document holds beside its fields (a nested block's reference too).
_DOCUMENT_KEYS = {"block_type_slug", "_block_document_id", "_block_document_name", "_is_anonymous"}
# What earlier versions saved at a block's top level and now lives in its `transport`.
MOVED_TO_TRANSPORT = ("timeout", "ca_cert", "verify_tls", "retries", "audit_log")
# Set while Prefect loads a document with `validate=False`: unknown keys are left out, warned.
_CHECKSUMS: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
_LENIENT: ContextVar[bool] = ContextVar("opsflow_lenient_block_load", default=False)


class StrictBlock(Block, ABC):
    """A block that refuses unknown keys (an interface: it has no block type of its own), built
    by hand, read from a document, or set as an attribute; its errors never show the input
    (a credential sits beside a typo).

    Example:
        >>> class Inventory(StrictBlock):
        ...     url: str
        >>> Inventory(url="https://cmdb", tag="web")
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for Inventory
          Value error, unknown field 'tag' — known fields: url ...
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    @classmethod
    def __dispatch_key__(cls) -> str | None:
        """The key Prefect files the class under when it is defined: its block type's slug.
        Prefect's own builds the whole block schema (a JSON schema and its checksum) to read
        that slug, about 0.1 s a class on every process start (`block_schema_to_key`)."""
        return cls.get_block_type_slug()

    @classmethod
    def _calculate_schema_checksum(cls, block_schema_fields: dict[str, Any] | None = None) -> str:
        """Prefect's checksum of the class's block schema, computed once per class: Prefect
        recomputes it (the whole JSON schema) for every model that has the block as a field,
        each time that model's schema is built (every runbook's parameter schema, at import)."""
        if block_schema_fields is not None:
            return super()._calculate_schema_checksum(block_schema_fields)
        if cls not in _CHECKSUMS:
            _CHECKSUMS[cls] = super()._calculate_schema_checksum()
        return _CHECKSUMS[cls]

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = _field_names(cls)
        unknown = [key for key in data if key not in fields | _DOCUMENT_KEYS]
        data = _transport_moved_in(cls, data, unknown)
        unknown = [key for key in unknown if key in data]
        if unknown and _LENIENT.get():
            logger.warning(
                "%s block: unknown saved setting(s) %s left out",
                cls.get_block_type_name(),
                ", ".join(repr(k) for k in unknown),
            )
            return {key: value for key, value in data.items() if key not in unknown}
        if unknown:
            raise ValueError(
                "; ".join(unknown_field_message(str(key), sorted(fields)) for key in unknown)
            )
        return data

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in type(self).model_fields:
            raise AttributeError(unknown_field_message(name, sorted(_field_names(type(self)))))
        super().__setattr__(name, value)

    @classmethod
    def _load_from_block_document(cls, block_document: Any, validate: bool = True) -> Any:
        """Prefect's `load(..., validate=False)` (its own advice when a document does not
        validate) loads a document with a stray key too, leaving the key out."""
        lenient = _LENIENT.set(not validate)
        try:
            return super()._load_from_block_document(block_document, validate=validate)
        finally:
            _LENIENT.reset(lenient)


def _field_names(cls: type[Block]) -> set[str]:
    return set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}


def _transport_moved_in(cls: type[Block], data: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """`data` with the transport settings among `keys` that earlier versions saved at the top
    level moved into the block's `transport`: over its defaults, under a `transport` the
    document also has (Prefect keeps old keys when a block is saved over, and the nested one
    is newer)."""
    field = cls.model_fields.get("transport")
    moved = [key for key in keys if key in MOVED_TO_TRANSPORT] if field else []
    if not field or not moved:
        return data
    flat = {key: data[key] for key in moved}
    kept = {key: value for key, value in data.items() if key not in moved}
    saved = data.get("transport")
    if saved is None:
        saved = field.get_default(call_default_factory=True)
    if isinstance(saved, Transport):
        nested = saved.model_dump()
    elif isinstance(saved, dict):
        nested = dict(saved)
    else:  # no default: the flat settings are all there is
        nested = {}
    newer = nested if "transport" in data and data["transport"] is not None else {}
    return {**kept, "transport": {**nested, **flat, **newer}}
