"""The runbooks opsflow ships, as plain data: what the command line needs before (and
without) importing Prefect or any runbook, so `opsflow --help` and `opsflow runbooks` answer at
once. `opsflow.flows.runbooks.registry` loads the flows themselves; a unit test keeps both in step.

Example:
    >>> CATALOG["load-report"].cron
    '0 * * * *'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One runbook: where its flow and parameter model live, and its default schedule (UTC)."""

    name: str
    module: str
    flow: str
    params: str
    param_name: str
    cron: str | None
    why_this_schedule: str
    summary: str


CATALOG: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "restart-overloaded-hosts",
            "opsflow.flows.runbooks.restart_overloaded_hosts",
            "restart_overloaded_hosts",
            "RestartPolicy",
            "policy",
            "*/10 * * * *",
            "every 10 minutes: overload is caught within one load-average window",
            "Restart the service of hosts over a load threshold, in batches, and verify they "
            "recovered.",
        ),
        Entry(
            "load-report",
            "opsflow.flows.runbooks.load_report",
            "load_report",
            "LoadReportParams",
            "params",
            "0 * * * *",
            "hourly: a table of the fleet for the on-call hand-over",
            "Every host's load and load per CPU, flagged ok, warning or critical, as a table and "
            "CSV.",
        ),
        Entry(
            "disk-cleanup",
            "opsflow.flows.runbooks.disk_cleanup",
            "disk_cleanup",
            "DiskCleanupParams",
            "params",
            "30 3 * * *",
            "daily at 03:30: clean before the morning's log rotation",
            "Clean old logs on hosts whose root filesystem is nearly full, and verify usage fell.",
        ),
        Entry(
            "register-hosts",
            "opsflow.flows.runbooks.register_hosts",
            "register_hosts",
            "RegisterHostsParams",
            "params",
            None,
            "on demand: needs a file or rows",
            "Register hosts from a CSV file or rows: every row validated first, idempotent.",
        ),
        Entry(
            "run-command",
            "opsflow.flows.runbooks.run_command",
            "run_command",
            "RunCommandParams",
            "params",
            None,
            "on demand: needs a command",
            "Run a command on the hosts a selector picks, in batches, with per-host results.",
        ),
        Entry(
            "remediate",
            "opsflow.flows.runbooks.remediate",
            "remediate",
            "RemediateParams",
            "params",
            None,
            "on demand or as you schedule it: a runbook made from its parameters or a preset",
            "Run a command on the hosts a signal shows as bad, in batches, and verify they "
            "recovered.",
        ),
    )
}
