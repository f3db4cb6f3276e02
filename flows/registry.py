"""Every runbook opsflow ships: its flow, parameter model and default schedule."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import Flow
from pydantic import BaseModel

from opsflow.flows.disk_cleanup import DiskCleanupParams, disk_cleanup
from opsflow.flows.load_report import LoadReportParams, load_report
from opsflow.flows.register_hosts import RegisterHostsParams, register_hosts
from opsflow.flows.restart_overloaded_hosts import restart_overloaded_hosts
from opsflow.flows.run_command import RunCommandParams, run_command
from opsflow.tasks.restart_plan import RestartPolicy


@dataclass(frozen=True)
class Runbook:
    """A runbook as the command line and the deployments see it."""

    flow: Flow
    params: type[BaseModel]
    param_name: str
    cron: str | None
    why_this_schedule: str

    @property
    def name(self) -> str:
        return self.flow.name

    @property
    def summary(self) -> str:
        return (self.flow.description or "").strip().splitlines()[0]


RUNBOOKS: dict[str, Runbook] = {
    r.name: r
    for r in (
        Runbook(
            restart_overloaded_hosts,
            RestartPolicy,
            "policy",
            "*/10 * * * *",
            "every 10 minutes: overload is caught within one load-average window",
        ),
        Runbook(
            load_report,
            LoadReportParams,
            "params",
            "0 * * * *",
            "hourly: a table of the fleet for the on-call hand-over",
        ),
        Runbook(
            disk_cleanup,
            DiskCleanupParams,
            "params",
            "30 3 * * *",
            "daily at 03:30: clean before the morning's log rotation",
        ),
        Runbook(
            register_hosts, RegisterHostsParams, "params", None, "on demand: needs a file or rows"
        ),
        Runbook(run_command, RunCommandParams, "params", None, "on demand: needs a command"),
    )
}
