"""Runbook: every host's load (and per CPU), flagged against thresholds, as a table and CSV.

Example:
    >>> load_report(LoadReportParams(csv_path="/tmp/load.csv")).critical      # doctest: +SKIP
    3
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from prefect import get_run_logger
from prefect.states import State
from pydantic import BaseModel, Field, model_validator

from opsflow.blocks import Prometheus
from opsflow.flows.runbooks.runbook_flow import runbook
from opsflow.opsapi.errors import UnknownHosts
from opsflow.opsapi.models import HostSelector
from opsflow.tasks.hosts import select_hosts
from opsflow.tasks.load_report import import_pandas_meanwhile, load_table, publish_load_report
from opsflow.tasks.monitoring import query_values
from opsflow.tasks.parameters import (
    DEFAULT_BLOCK_HELP,
    PLATFORM_TYPES,
    NotifyBlock,
    Platform,
    StrictModel,
    by_name,
    notify_block_field,
    ordered_fields,
)
from opsflow.tasks.runbook import (
    NOTHING_MATCHED,
    chosen,
    final_state,
    refused,
    start_reading,
    with_deployment_defaults,
)

# node_exporter's CPU counter has one series per CPU and mode: counting the idle ones counts CPUs.
CPU_QUERY = 'count by (instance) (node_cpu_seconds_total{mode="idle"})'


class LoadReportParams(StrictModel):
    """What to measure and where the lines are."""

    NOT_ABOVE: ClassVar[dict[str, str]] = {"warning": "critical"}

    platform: Platform = Field(
        default=None,
        description=f"The ops platform whose inventory is reported. {DEFAULT_BLOCK_HELP}",
    )
    prometheus: Annotated[Prometheus | None, by_name(Prometheus)] = Field(
        default=None, description=f"Where the load is read. {DEFAULT_BLOCK_HELP}"
    )
    query: str = Field(default="node_load1", min_length=1, description="PromQL: load per instance.")
    cpu_query: str | None = Field(
        default=CPU_QUERY, description="PromQL: CPU count per instance; empty for none."
    )
    warning: float = Field(default=0.7, gt=0, description="Warn at this load per CPU.")
    critical: float = Field(default=1.0, gt=0, description="Critical at this load per CPU.")
    selector: HostSelector = Field(default_factory=HostSelector, description="Which hosts.")
    csv_path: str | None = Field(default=None, description="Also write every host to this CSV.")
    notify_block: NotifyBlock = notify_block_field()

    @model_validator(mode="after")
    def _ordered(self) -> LoadReportParams:
        ordered_fields(self)
        return self


class LoadReport(BaseModel):
    """Counts per status, the worst hosts, and where the CSV went.

    Example:
        >>> LoadReport(hosts=0, critical=0, warning=0, ok=0, no_data=0,
        ...            outcome="nothing_matched", reason="tag wbe selected none of the 40 hosts listed").summary
        'nothing matched: tag wbe selected none of the 40 hosts listed'
    """

    outcome: Literal["completed", "nothing_matched"] = Field(
        default="completed",
        description="nothing_matched: the selector picked no host, so nothing was reported.",
    )
    reason: str = Field(default="", description="Why nothing matched.")
    hosts: int
    critical: int
    warning: int
    ok: int
    no_data: int
    worst: list[dict] = Field(default_factory=list, description="Up to 20 worst hosts.")
    csv_path: str | None = None

    @property
    def summary(self) -> str:
        if self.outcome == "nothing_matched":
            return f"nothing matched: {self.reason}"
        return (
            f"{self.hosts} hosts: {self.critical} critical, {self.warning} warning, "
            f"{self.ok} ok, {self.no_data} without data"
        )


DEFAULTS = LoadReportParams()  # the form's defaults; never mutated


@runbook(name="load-report")
def load_report(params: LoadReportParams = DEFAULTS) -> LoadReport | State:
    """Every host's load and load per CPU, flagged ok, warning or critical, as a table and CSV."""
    # A host named that the inventory lacks ends the run Failed with the closest names; a
    # selector that picks no host ends it Failed as NothingMatched: an empty report is not a
    # calm fleet.
    params = with_deployment_defaults(params, "params")
    platform = chosen(params.platform, PLATFORM_TYPES, "platform")
    prometheus = chosen(params.prometheus, Prometheus, "prometheus")
    # The load and the CPU counts are read while the inventory is listed: at 100,000 hosts each
    # takes seconds, mostly the platform's and Prometheus's own. A run refused or matching
    # nothing still ends after them (Prefect waits for its task runs): reads, never actions.
    loads_read = start_reading(prometheus, params.query, "load")
    cpus_read = query_values.submit(prometheus, params.cpu_query) if params.cpu_query else None
    import_pandas_meanwhile()
    try:
        selection = select_hosts(platform, params.selector)
    except UnknownHosts as exc:
        return refused(exc)
    if not selection.selected:
        empty = LoadReport(
            outcome="nothing_matched",
            reason=selection.nothing_matched,
            hosts=0,
            critical=0,
            warning=0,
            ok=0,
            no_data=0,
            csv_path=None,
        )
        get_run_logger().error(empty.summary)
        return final_state(empty, failed=True, name=NOTHING_MATCHED)
    hosts = selection.selected
    loads = loads_read()
    cpus = cpus_read.result() if cpus_read is not None else []  # none: the raw load is flagged
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
