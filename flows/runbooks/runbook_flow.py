"""The Prefect flow every runbook is: told how it ended, and refusing bad parameters in one line.

A deployment's run gets its parameters from a form or a trigger; Prefect checks them in the
flow-run process before the runbook starts. Its own words for a failed check are "Failed to
resolve block references in parameters." (which block?) and a pydantic dump, with the engine's
traceback. A runbook's flow says instead, in its state message and its log, which field is
wrong and how to fix it: `policy.platform: the block it picked (id 1f0c...) is not saved any
more: pick a saved block in the run form`, or the model's own rule ("recovery_threshold (3) must
not be above threshold (2): ...").

Example:
    >>> @runbook(name="noop")
    ... def noop() -> None: ...
    >>> type(noop).__name__
    'RunbookFlow'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import prefect.flow_engine
from prefect import Flow
from prefect.exceptions import ParameterTypeError
from pydantic import ValidationError

from opsflow.tasks.notify import notify_on_finish

F = TypeVar("F", bound=Callable[..., Any])


class RunbookFlow(Flow):  # type: ignore[type-arg]
    """A Flow whose parameter check fails in one line that names the field."""

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().validate_parameters(_known_blocks_loaded(parameters))
        except ParameterTypeError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ValidationError):
                raise ParameterTypeError(_said(cause)) from None
            missing = _missing_blocks(parameters)
            if missing:
                raise ParameterTypeError("; ".join(missing)) from None
            raise


@contextmanager
def _heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
    """Prefect's heartbeats for a run; a runbook's run does not wait for the thread at its end.

    The heartbeat thread sleeps in one-second steps, and Prefect's sync engine joins it when
    the run ends: every run waited up to 1 s (0.9 s after a sub-second run) after its final
    state was set.
    A runbook's run lets the daemon thread see the stop on its own, as Prefect's async
    engine does: it sends nothing once stopped (a heartbeat already on its way when the run
    ends may land after a Failed state; the crash automation cannot move a final run to
    Crashed), and it ends with the process. Heartbeats during the run are unchanged (the
    crash automation needs them).
    """
    if isinstance(getattr(engine, "flow", None), RunbookFlow):
        join_on_exit = False
    with _prefect_heartbeats(engine, join_on_exit=join_on_exit):
        yield


_prefect_heartbeats = prefect.flow_engine._send_heartbeats
if "join_on_exit" in inspect.signature(_prefect_heartbeats).parameters:
    # tests/unit/test_heartbeats.py fails when a Prefect release changes this.
    prefect.flow_engine._send_heartbeats = _heartbeats


def runbook(name: str) -> Callable[[F], RunbookFlow]:
    """`@flow(name=...)` for a runbook: its notifications on completion and failure, and its
    parameter check in one line."""

    def make(fn: F) -> RunbookFlow:
        return RunbookFlow(
            fn=fn, name=name, on_completion=[notify_on_finish], on_failure=[notify_on_finish]
        )

    return make


def _known_blocks_loaded(parameters: Any) -> Any:
    """`parameters` with each block reference (a deployment's picked block) whose type this
    process has imported loaded as that type.

    Prefect's own resolution (`Block.load_from_ref`) finds the type after importing every
    installed Prefect collection: prefect-redis costs 0.6 s of each flow-run process here,
    prefect-aws more. A reference to a type not imported here, and any reference that fails,
    is left to Prefect: a user's block type is found so, and a deleted block refused as before.
    """
    if isinstance(parameters, list):
        return [_known_blocks_loaded(value) for value in parameters]
    if not isinstance(parameters, dict):
        return parameters
    ref = parameters.get("$ref")
    if not (isinstance(ref, dict) and ref.get("block_document_id")):
        return {key: _known_blocks_loaded(value) for key, value in parameters.items()}
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client
    from prefect.utilities.dispatch import get_registry_for_type

    try:
        with get_client(sync_client=True) as client:
            document = client.read_block_document(ref["block_document_id"], include_secrets=False)
        slug = document.block_type.slug if document.block_type else None
        block_type = (get_registry_for_type(Block) or {}).get(slug or "")
        if block_type is None:
            return parameters
        return block_type.load_from_ref(ref, _sync=True)
    except Exception:  # noqa: BLE001 - Prefect's resolution says what is wrong, as before
        return parameters


def _missing_blocks(parameters: Any, path: str = "") -> list[str]:
    """Each block reference in `parameters` that names no saved block, by its field."""
    if isinstance(parameters, dict):
        ref = parameters.get("$ref")
        if isinstance(ref, dict) and ref.get("block_document_id"):
            from prefect.blocks.core import Block

            try:
                Block.load_from_ref(ref, _sync=True)
            except (ValueError, RuntimeError):
                return [
                    f"{path or 'parameters'}: the block it picked (id {ref['block_document_id']}) "
                    "is not saved any more: pick a saved block in the run form, or save one "
                    "and deploy again"
                ]
            return []
        found: list[str] = []
        for key, value in parameters.items():
            found += _missing_blocks(value, f"{path}.{key}" if path else str(key))
        return found
    return []


def _said(error: ValidationError) -> str:
    """A pydantic error as a person reads it: `field: message`, one line per error."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)
