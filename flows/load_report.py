"""Runbook: every host's load (and per CPU), flagged against thresholds, as a table and CSV.

Example:
    >>> load_report(LoadReportParams(csv_path="/tmp/load.csv")).critical      # doctest: +SKIP
    3
"""

from __future__ import annotations

import pandas as pd
from prefect import flow
from pydantic import BaseModel, Field, model_validator

from opsflow.blocks import OpsPlatform, Prometheus
from opsflow.opsapi.errors import OpsAPIError, RunbookAborted
from opsflow.opsapi.models import HostSelector
from opsflow.tasks.hosts import list_hosts
from opsflow.tasks.load_report import load_table, publish_load_report
from opsflow.tasks.monitoring import load_by_instance, query_instant, query_load
from opsflow.tasks.notify import notify_on_finish


class LoadReportParams(BaseModel):
    """What to measure and where the lines are."""

    platform_block: str = Field(default="lab", description="Name of the Ops Platform block.")
    prometheus_block: str = Field(default="lab", description="Name of the Prometheus block.")
    query: str = Field(default="node_load1", min_length=1, description="PromQL: load per instance.")
    cpu_query: str | None = Field(
        default="lab_host_cpus", description="PromQL: CPU count per instance; empty for none."
    )
    warning: float = Field(default=0.7, gt=0, description="Warn at this load per CPU.")
    critical: float = Field(default=1.0, gt=0, description="Critical at this load per CPU.")
    selector: HostSelector = Field(default_factory=HostSelector, description="Which hosts.")
    csv_path: str | None = Field(default=None, description="Also write every host to this CSV.")
    notify_block: str | None = Field(
        default=None, description="Notification block (type-slug/name) told how the run ended."
    )

    @model_validator(mode="after")
    def _ordered(self) -> LoadReportParams:
        if self.warning > self.critical:
            raise ValueError(
                f"warning ({self.warning:g}) must not be above critical ({self.critical:g})"
            )
        return self


class LoadReport(BaseModel):
    """Counts per status, the worst hosts, and where the CSV went."""

    hosts: int
    critical: int
    warning: int
    ok: int
    no_data: int
    worst: list[dict] = Field(default_factory=list, description="Up to 20 worst hosts.")
    csv_path: str | None = None

    @property
    def summary(self) -> str:
        return (
            f"{self.hosts} hosts: {self.critical} critical, {self.warning} warning, "
            f"{self.ok} ok, {self.no_data} without data"
        )


DEFAULTS = LoadReportParams()  # the form's defaults; never mutated


@flow(name="load-report", on_completion=[notify_on_finish], on_failure=[notify_on_finish])
def load_report(params: LoadReportParams = DEFAULTS) -> LoadReport:
    """Query load (and CPU counts), join with the inventory, flag, publish."""
    platform = OpsPlatform.load(params.platform_block)
    prometheus = Prometheus.load(params.prometheus_block)
    try:
        loads = query_load(prometheus, params.query)
    except OpsAPIError as exc:
        raise RunbookAborted(f"no load data for the report: {exc}") from exc
    cpus = (
        load_by_instance(query_instant(prometheus, params.cpu_query))
        if params.cpu_query
        else pd.DataFrame()
    )
    hosts = list_hosts(platform, params.selector)
    table = load_table(loads, cpus, hosts, params.warning, params.critical)
    counts = publish_load_report(table, params.csv_path)
    worst = table.head(20).astype(object).where(table.head(20).notna(), None)
    return LoadReport(
        hosts=len(table),
        critical=counts["critical"],
        warning=counts["warning"],
        ok=counts["ok"],
        no_data=counts["no data"],
        worst=worst.to_dict("records"),
        csv_path=params.csv_path,
    )
