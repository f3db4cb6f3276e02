"""What an ops engineer reads in a run's logs when it fails: one line for a failure opsflow
means (its message names the cause), a traceback only for a bug or when asked for one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from uuid import uuid4

import pytest
from prefect.exceptions import FailedRun
from prefect.logging.loggers import flow_run_logger

from opsflow.opsapi.errors import ConnectionFailed
from opsflow.tasks.expected_ends import ENGINE_EXIT, ended_on_purpose
from opsflow.tasks.runbook import RunbookAborted


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Capture]:
    """Prefect's run loggers write to `Capture` only (not to an API: no server here)."""
    capture = Capture()
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    saved = [(logger.level, logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [capture], False
        logger.setLevel(logging.INFO)
    yield capture
    for logger, (level, handlers, propagate) in zip(loggers, saved, strict=True):
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)


def raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:
        return caught


def test_an_opsflow_failure_is_one_line_without_traceback(logs):
    run = flow_run_logger(flow_run_id=uuid4())
    aborted = raised(RunbookAborted("no usable load data, so nothing was done"))

    run.error("Encountered exception during execution: %r", aborted, exc_info=aborted)
    run.error(ENGINE_EXIT, exc_info=aborted)

    assert logs.lines == [
        "Encountered exception during execution: "
        "RunbookAborted('no usable load data, so nothing was done')"
    ]


def test_a_task_that_fails_with_an_opsflow_error_logs_no_traceback(logs):
    task = logging.getLogger("prefect.task_runs")
    refused = raised(ConnectionFailed("cannot connect to the platform at https://127.0.0.1:9"))

    task.error(
        "Task run failed with exception: %r - Retries are exhausted", refused, exc_info=refused
    )

    assert len(logs.lines) == 1 and "Traceback" not in logs.lines[0]


def test_a_run_that_ended_failed_on_purpose_is_not_reported_again_as_a_crash(logs):
    ours, theirs = uuid4(), uuid4()
    ended_on_purpose(ours)
    end = raised(FailedRun("aborted: not approved (change freeze)"))

    flow_run_logger(flow_run_id=ours).error(ENGINE_EXIT, exc_info=end)
    flow_run_logger(flow_run_id=theirs).error(ENGINE_EXIT, exc_info=end)  # not opsflow's end

    assert len(logs.lines) == 1 and "Traceback" in logs.lines[0]


def test_a_bug_keeps_its_traceback(logs):
    bug = raised(KeyError("hostname"))

    flow_run_logger(flow_run_id=uuid4()).error(
        "Encountered exception during execution: %r", bug, exc_info=bug
    )

    assert "Traceback" in logs.lines[0] and "KeyError" in logs.lines[0]


@pytest.mark.parametrize("how", ["verbose", "debug"])
def test_a_bug_report_keeps_every_traceback(logs, monkeypatch, how):
    if how == "verbose":
        monkeypatch.setenv("OPSFLOW_VERBOSE", "1")
    else:
        logging.getLogger("prefect.flow_runs").setLevel(logging.DEBUG)
    aborted = raised(RunbookAborted("no usable load data"))

    flow_run_logger(flow_run_id=uuid4()).error(ENGINE_EXIT, exc_info=aborted)

    assert len(logs.lines) == 1 and "Traceback" in logs.lines[0]
