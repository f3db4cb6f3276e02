"""What every runbook does the same way: its blocks, its first reading, its run key, its end.

    blocks        `chosen(block, PLATFORM_TYPES, "platform")`: the block given, else "default"
    first read    `read_metric(...)`: no usable data means `RunbookAborted`, before any action
    run key       `run_key()`: this flow run's id, the prefix of every job's Idempotency-Key
    the end       `final_state(result, failed)`: Completed or Failed, the typed result as data

Example:
    >>> from types import SimpleNamespace
    >>> final_state(SimpleNamespace(summary="3 hosts cleaned"), failed=False).is_completed()
    True
"""

from __future__ import annotations

import uuid
from typing import Protocol, TypeVar

import pandas as pd
from prefect.blocks.core import Block
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from opsflow.blocks.monitoring import Prometheus
from opsflow.opsapi.errors import ConfigurationError, OpsAPIError
from opsflow.tasks.expected_ends import ended_on_purpose
from opsflow.tasks.monitoring import MAX_SAMPLE_AGE_SECONDS, query_metric
from opsflow.tasks.parameters import DEFAULT_BLOCK, load_block

B = TypeVar("B", bound=Block)


class RunbookAborted(OpsAPIError):
    """A runbook stopped on purpose: missing data, a blast-radius breach or too many failures."""


class Summarized(Protocol):
    @property
    def summary(self) -> str: ...


def chosen(block: B | None, block_types: type[B] | tuple[type[Block], ...], field: str) -> B:
    """`block` when the parameter `field` names one, else the saved block called "default"
    (of the first of `block_types` that has one).

    Raises:
        ConfigurationError: none given and none saved under that name; says how to fix it.
    """
    if block is not None:
        return block
    types = block_types if isinstance(block_types, tuple) else (block_types,)
    try:
        return load_block(DEFAULT_BLOCK, types)  # type: ignore[return-value]
    except ValueError:
        kinds = " or ".join(t.get_block_type_name() for t in types)
        raise ConfigurationError(
            f"{field}: no {kinds} block given and none saved as {DEFAULT_BLOCK!r}; pick one "
            f"(--{field.replace('_', '-')}-block NAME on the command line) or save one named "
            f"{DEFAULT_BLOCK!r}"
        ) from None


def read_metric(
    prometheus: Prometheus,
    promql: str,
    what: str,
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
    freshness_query: str | None = None,
) -> pd.DataFrame:
    """The runbook's first reading: usable values per instance, or `RunbookAborted`.

    Args:
        what: what the values are ("load", "disk usage"), for the abort message.
    """
    try:
        return query_metric(prometheus, promql, max_age_seconds, freshness_query)
    except OpsAPIError as exc:
        raise RunbookAborted(f"no usable {what} data, so nothing was done: {exc}") from exc


def run_key() -> str:
    """This flow run's id: with a step name it makes each job's Idempotency-Key, so a rerun
    of the same run never starts a job twice and a new run never reuses an old key."""
    return str(flow_run.get_id() or f"adhoc-{uuid.uuid4().hex}")


def final_state(result: Summarized, failed: bool) -> State:
    """The run's end: Failed or Completed with its summary as message and `result` as data."""
    if failed:
        ended_on_purpose(flow_run.get_id())  # no engine traceback for it in the run's logs
        return Failed(message=result.summary, data=result)
    return Completed(message=result.summary, data=result)
