"""What every runbook does the same way: its blocks, its first reading, its run key, its end.

    blocks        `chosen(block, PLATFORM_TYPES, "platform")`: the block given, else "default"
    first read    `read_metric(...)`: no usable data means `RunbookAborted`, before any action
    run key       `run_key()`: this flow run's id, the prefix of every job's Idempotency-Key
    deployment    `with_deployment_defaults(params, "policy")`: a field a deployment's run
                  was not given comes from the deployment, not from the model's default
    the end       `final_state(result, failed)`: Completed or Failed, the typed result as data;
                  a selector that picked no host ends Failed named `NOTHING_MATCHED`;
                  `refused(error)` ends a run refused before anything was done (a host named
                  that the inventory lacks) with the error's one line as its message

Example:
    >>> from types import SimpleNamespace
    >>> final_state(SimpleNamespace(summary="3 hosts cleaned"), failed=False).is_completed()
    True
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from prefect import get_run_logger
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from pydantic import BaseModel

from opsflow.blocks.monitoring import Prometheus
from opsflow.opsapi.errors import ConfigurationError, OpsAPIError
from opsflow.tasks.expected_ends import ended_on_purpose
from opsflow.tasks.monitoring import MAX_SAMPLE_AGE_SECONDS, Readings, query_metric
from opsflow.tasks.parameters import DEFAULT_BLOCK, kinds, load_block

B = TypeVar("B", bound=Block)
M = TypeVar("M", bound=BaseModel)


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
        raise ConfigurationError(
            f"{field}: no {kinds(types)} block given and none saved as {DEFAULT_BLOCK!r}; pick one "
            f"(--{field.replace('_', '-')}-block NAME on the command line) or save one named "
            f"{DEFAULT_BLOCK!r}"
        ) from None


def read_metric(
    prometheus: Prometheus,
    promql: str,
    what: str,
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
    freshness_query: str | None = None,
) -> Readings:
    """The runbook's first reading: usable values per instance, or `RunbookAborted`.

    Args:
        what: what the values are ("load", "disk usage"), for the abort message.
    """
    with _aborted_without(what):
        return query_metric(prometheus, promql, max_age_seconds, freshness_query)


def start_reading(
    prometheus: Prometheus,
    promql: str,
    what: str,
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
    freshness_query: str | None = None,
) -> Callable[[], Readings]:
    """`read_metric` started beside other work (the inventory's listing), in a flow run: at
    100,000 hosts each takes seconds, mostly Prometheus's and the platform's, so they overlap.
    Calling what it returns waits for the values (or `RunbookAborted`).

    Example:
        >>> loads = start_reading(Prometheus.load("lab"), "node_load1", "load")  # doctest: +SKIP
        >>> hosts = select_hosts(platform, selector)                            # doctest: +SKIP
        >>> loads()                                                             # doctest: +SKIP
    """
    future = query_metric.submit(prometheus, promql, max_age_seconds, freshness_query)

    def result() -> Readings:
        with _aborted_without(what):
            return future.result()

    return result


@contextmanager
def _aborted_without(what: str) -> Iterator[None]:
    """A failed first reading as `RunbookAborted`: nothing is acted on without data."""
    try:
        yield
    except OpsAPIError as exc:
        raise RunbookAborted(f"no usable {what} data, so nothing was done: {exc}") from exc


def run_key() -> str:
    """This flow run's id: with a step name it makes each job's Idempotency-Key, so a rerun
    of the same run never starts a job twice and a new run never reuses an old key."""
    return str(flow_run.get_id() or f"adhoc-{uuid.uuid4().hex}")


# The state name of a run whose selector picked no host. Failed, not Completed: a scheduled
# run whose tag was renamed or misspelt, or whose hosts were decommissioned, did nothing for
# anyone, and Prefect's UI, its failure automations and the runbook's on_failure notification
# key on the state's type (a Completed state of any name is green); the name tells it apart
# from a failed rollout in the run list ("NothingMatched", not "Failed").
NOTHING_MATCHED = "NothingMatched"


def final_state(result: Summarized, failed: bool, name: str | None = None) -> State:
    """The run's end: Failed or Completed with its summary as message and `result` as data;
    `name` names a Failed state other than "Failed" (`NOTHING_MATCHED`).

    Example:
        >>> from types import SimpleNamespace
        >>> final_state(SimpleNamespace(summary="nothing matched"), True, NOTHING_MATCHED).name
        'NothingMatched'
    """
    if failed:
        ended_on_purpose(flow_run.get_id())  # no engine traceback for it in the run's logs
        return Failed(message=result.summary, data=result, **({"name": name} if name else {}))
    return Completed(message=result.summary, data=result)


def refused(error: ConfigurationError) -> State:
    """The end of a run refused before anything was done: Failed, its message the error's one
    line (not Prefect's "Flow run encountered an exception: ..."), the error as its data.

    Example:
        >>> refused(UnknownHosts("selector.hostnames: 'web-1' is not ...")).message  # doctest: +SKIP
        "selector.hostnames: 'web-1' is not ..."
    """
    get_run_logger().error("%s", error)
    ended_on_purpose(flow_run.get_id())
    return Failed(message=str(error), data=error)


GUARDS = ("allowlist",)  # what a deployment fixes for every run of it


def with_deployment_defaults(params: M, name: str) -> M:
    """`params` with each field the run was not given taken from its deployment's parameter
    `name`; the run's own fields win. A run not made from a deployment is left as it is.

    Prefect replaces a parameter as a whole: a deployment made with `--platform-block prod`,
    run with ``--params '{"policy": {"dry_run": true}}'`` (or a custom run, an automation, a
    trigger), would otherwise lose `prod` for the block saved as "default", and a deployment's
    `dry_run: true` would turn back to false when only the selector is given. The deployment's
    `allowlist` holds for every run: a run that sends another, none or an empty one gets the
    deployment's (a command outside it is refused when the parameters are validated again).
    """
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is None or run.deployment_id is None:
        return params
    given = (run.parameters or {}).get(name)
    with get_client(sync_client=True) as client:
        stored = (client.read_deployment(run.deployment_id).parameters or {}).get(name)
    if not isinstance(given, dict) or not isinstance(stored, dict):
        return params
    kept = {field: value for field, value in stored.items() if field not in given}
    # A run never loosens the deployment's guard: its allowlist stands, whatever the run sends.
    kept |= {f: stored[f] for f in GUARDS if stored.get(f) and given.get(f) != stored[f]}
    if not kept:
        return params
    get_run_logger().info("from the deployment's %s: %s", name, ", ".join(sorted(kept)))
    return type(params).model_validate(_blocks_loaded({**given, **kept}))


def _blocks_loaded(values: dict[str, Any]) -> dict[str, Any]:
    """A deployment's parameter values with each saved-block reference (`{"$ref": ...}`)
    loaded, as Prefect does for a run's own parameters."""
    return {
        field: Block.load_from_ref(value["$ref"], _sync=True)  # type: ignore[call-arg]
        if isinstance(value, dict) and "$ref" in value
        else value
        for field, value in values.items()
    }
