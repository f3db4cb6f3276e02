"""The `opsflow` command line, run as a user runs it (a subprocess against the test API)."""

from __future__ import annotations

import os
import subprocess
import sys

from prefect.settings import PREFECT_API_URL

LAB_BLOCKS = ("--platform-block", "lab", "--prometheus-block", "lab")


def opsflow(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsflow.flows", *args],
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_runbooks_lists_every_runbook_with_its_schedule():
    result = opsflow("runbooks")

    assert result.returncode == 0, result.stderr
    for name, schedule in [
        ("restart-overloaded-hosts", "*/10 * * * *"),
        ("load-report", "0 * * * *"),
        ("disk-cleanup", "30 3 * * *"),
        ("register-hosts", "on demand"),
        ("run-command", "on demand"),
        ("remediate", "on demand"),
    ]:
        assert name in result.stdout and schedule in result.stdout


def test_run_help_shows_each_parameter_with_its_description():
    result = opsflow("run", "restart-overloaded-hosts", "--help")

    assert result.returncode == 0
    for text in (
        "--threshold",
        "Restart hosts whose load is above this",
        "--dry-run",
        "--tag",
        "--max-hosts",
        "--approval",
        "--cooldown-minutes",
    ):
        assert text in result.stdout


def test_invalid_parameter_exits_2_naming_the_field():
    result = opsflow("run", "restart-overloaded-hosts", "--batch-size", "0")

    assert result.returncode == 2
    assert "invalid --batch-size: Input should be greater than or equal to 1" in result.stdout


def test_run_load_report_prints_the_table(fresh_lab):
    fresh_lab.overload(8.0, "lab-db-02")

    result = opsflow("run", "load-report", "--tag", "db", *LAB_BLOCKS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "lab-db-02" in result.stdout and "critical" in result.stdout
    assert "5 hosts: 1 critical, 0 warning, 4 ok, 0 without data" in result.stdout
    assert "lab-web-01" not in result.stdout


def test_failed_rollout_exits_1(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    fresh_lab.admin.fail_restart("lab-web-01")

    result = opsflow(
        "run", "restart-overloaded-hosts", "--verify-window-seconds", "20", *LAB_BLOCKS
    )

    assert result.returncode == 1
    assert "restart failed" in result.stdout
    assert "failed: 1 host failed (limit 1)" in result.stdout


def test_a_restart_run_reads_its_signal_without_importing_pandas(fresh_lab):
    """pandas' import (0.35-0.45 s) is paid only where a table is built (load-report, a CSV):
    a runbook's signal is read and planned on as plain readings (a dry run: the re-reads
    before a batch and the recovery wait use the same readings)."""
    fresh_lab.overload(8.0, "lab-db-02")

    result = subprocess.run(
        [sys.executable, "-m", "opsflow.flows", "run", "restart-overloaded-hosts", "--dry-run"]
        + list(LAB_BLOCKS),
        env={
            **os.environ,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "COLUMNS": "200",
            "PYTHONPROFILEIMPORTTIME": "1",  # every import, one line each, on stderr
        },
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "would restart 1 host" in result.stdout and "lab-db-02" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "opsflow.tasks.monitoring" in imported  # the listing is there
    assert not {"pandas", "numpy"} & imported
