"""The `opsflow` command line run in the test's own process: the console script's entry point,
its argv and environment, what it printed and its exit code, without starting a Python that
imports Prefect again (seconds per call). For checks of parsing and messages; the tests where
the process itself is the point (a terminal, signals, a temporary server) start a real one.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from unittest import mock

from prefect.settings import PREFECT_API_URL, temporary_settings


@dataclass
class Done:
    """What a finished command left: as `subprocess.CompletedProcess` has it."""

    returncode: int
    stdout: str
    stderr: str


def opsflow_in_process(*args: str, api: str | None, program: str = "opsflow") -> Done:
    """Run `opsflow ARGS` (or `opsflow lab ARGS` with `program="opsflow lab"`) here, with
    PREFECT_API_URL set to `api` (None: unset, as on a machine with no server)."""
    from opsflow.flows.cli.main import QUIET_PREFECT, app, run_app

    if program == "opsflow lab":
        from opsflow.lab.cli import app  # noqa: F811 - the lab is a program of its own
    environ = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    environ.update({**QUIET_PREFECT, "COLUMNS": "200"})
    if api:
        environ["PREFECT_API_URL"] = api
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.dict(os.environ, environ, clear=True),
        mock.patch.object(sys, "argv", [program, *args]),
        temporary_settings({PREFECT_API_URL: api}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            run_app(app, program)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Done(code, out.getvalue(), err.getvalue())
