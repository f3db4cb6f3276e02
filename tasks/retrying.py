"""When a Prefect-level retry of a read is worth it: only for transient failures."""

from __future__ import annotations

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

from opsflow.opsapi.errors import ConnectionFailed, RateLimited, RequestTimedOut, ServerError

TRANSIENT = (ConnectionFailed, RateLimited, RequestTimedOut, ServerError)


def transient_failure(task: Task, task_run: TaskRun, state: State) -> bool:
    """Retry condition for idempotent tasks: retry outages, never a refusal or bad input."""
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:  # noqa: BLE001 - anything else is final
        return False
    return False
