"""A run that ends the way a runbook means it to end reads as one line in its logs, not a crash.

A runbook fails on purpose: an approval rejected, a blast-radius abort, a host that did not
recover, no usable metrics (`RunbookAborted`), a platform that refused. Each already says why in
one line ("Finished in state Failed('aborted: not approved ...')"). Prefect adds tracebacks to
it: the engine logs every exception a flow or task raises with its traceback, and in a
deployment's flow-run process (`opsflow serve`, a worker) it logs the run's end once more as
"Engine execution exited with unexpected exception", traceback included, because it asks a
Failed run for its result. Those are what an ops engineer then reads in the UI, for an outcome
that is not a bug.

So, on Prefect's run loggers (installed when opsflow's tasks are imported):
- an opsflow error (`OpsAPIError`: its message names the cause) is logged without traceback,
  and so are parameters a run was refused (a runbook's flow names the field: runbook_flow);
- the engine's second report of a run's end is left out when the run ended on purpose (a
  Failed state opsflow returned, or an opsflow error);
- any other exception, a bug, keeps its traceback; so does everything with
  `PREFECT_LOGGING_LEVEL=DEBUG` or `opsflow --verbose`, for a bug report.

>>> ended_on_purpose("0b9d5a1e-...")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from uuid import UUID

from prefect.exceptions import ParameterTypeError

from opsflow.opsapi.errors import OpsAPIError

ENGINE_EXIT = "Engine execution exited with unexpected exception"
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_ENDED_ON_PURPOSE: set[str] = set()


def ended_on_purpose(flow_run_id: UUID | str | None) -> None:
    """Mark a flow run whose Failed end opsflow chose (it is logged as such already)."""
    if flow_run_id:
        _ENDED_ON_PURPOSE.add(str(flow_run_id))


class _ExpectedEndsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or _for_a_bug_report(record):
            return True
        expected = isinstance(record.exc_info[1], (OpsAPIError, ParameterTypeError))
        if str(record.msg).startswith(ENGINE_EXIT):
            return not (expected or str(getattr(record, "flow_run_id", "")) in _ENDED_ON_PURPOSE)
        if expected:
            record.exc_info = record.exc_text = None
        return True


def _for_a_bug_report(record: logging.LogRecord) -> bool:
    return bool(os.environ.get("OPSFLOW_VERBOSE")) or logging.getLogger(record.name).isEnabledFor(
        logging.DEBUG
    )


class _ParameterDumpLeftOut(logging.Filter):
    """Prefect logs a run's refused parameters as pydantic's whole error list first; the
    engine's next line says the same in one line (a runbook's flow names the field)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _for_a_bug_report(record) or not str(record.msg).startswith(
            "Parameter validation failed for flow"
        )


for _name in RUN_LOGGERS:
    logging.getLogger(_name).addFilter(_ExpectedEndsWithoutTraceback())
logging.getLogger("prefect.flows").addFilter(_ParameterDumpLeftOut())
