"""The `opsflow` command line: run runbooks ad hoc, and drive the local lab."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from opsapi.errors import OpsAPIError

app = typer.Typer(help="Ops runbooks as Prefect flows.", no_args_is_help=True)
run_app = typer.Typer(
    help="Run a runbook now (Prefect's embedded API or PREFECT_API_URL).", no_args_is_help=True
)
app.add_typer(run_app, name="run")
console = Console(width=None if sys.stdout.isatty() else 120)


@run_app.command("restart-overloaded-hosts")
def restart_overloaded_hosts_command(
    threshold: Annotated[float, typer.Option(help="Restart hosts whose load is above this.")] = 4.0,
    recovery_threshold: Annotated[float, typer.Option(help="Healthy again below this load.")] = 2.0,
    tag: Annotated[
        list[str] | None, typer.Option(help="Only hosts with this tag (repeatable).")
    ] = None,
    hostname_pattern: Annotated[
        str | None, typer.Option(help="Only hosts matching this glob.")
    ] = None,
    max_hosts: Annotated[int, typer.Option(help="Blast-radius cap: more candidates aborts.")] = 5,
    batch_size: Annotated[int, typer.Option(help="Hosts restarted at once.")] = 2,
    max_failures: Annotated[int, typer.Option(help="Stop the rollout at this many failures.")] = 1,
    service: Annotated[str, typer.Option(help="Service to restart.")] = "nginx",
    query: Annotated[str, typer.Option(help="PromQL giving load per instance.")] = "node_load1",
    verify_window: Annotated[float, typer.Option(help="Seconds a host may take to recover.")] = 60,
    job_timeout: Annotated[int, typer.Option(help="Per-host timeout of each job, seconds.")] = 120,
    platform_block: Annotated[str, typer.Option(help="Ops Platform block name.")] = "lab",
    prometheus_block: Annotated[str, typer.Option(help="Prometheus block name.")] = "lab",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; restart nothing.")] = False,
) -> None:
    """Restart overloaded hosts in batches and verify that they recovered."""
    from flows.restart_overloaded_hosts import restart_overloaded_hosts
    from tasks.restart_plan import RestartPolicy

    try:
        policy = RestartPolicy(
            threshold=threshold,
            recovery_threshold=recovery_threshold,
            selector={"tags": tag or [], "hostname_pattern": hostname_pattern},
            max_hosts=max_hosts,
            batch_size=batch_size,
            max_failures=max_failures,
            service=service,
            query=query,
            verify_window_seconds=verify_window,
            job_timeout_seconds=job_timeout,
            platform_block=platform_block,
            prometheus_block=prometheus_block,
            dry_run=dry_run,
        )
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "parameters"
            console.print(f"[red]invalid --{field.replace('_', '-')}[/]: {error['msg']}")
        raise typer.Exit(2) from None

    state = restart_overloaded_hosts(policy, return_state=True)
    try:
        report = state.result(raise_on_failure=False)
    except OpsAPIError as exc:
        report = exc
    if isinstance(report, BaseException):
        console.print(f"[red bold]runbook failed[/]: {report}")
        raise typer.Exit(1)
    show_report(report)
    if report.outcome in ("failed", "aborted"):
        raise typer.Exit(1)


def show_report(report: object) -> None:
    """The report as a table, then its one-line summary."""
    table = Table(title=f"restart-overloaded-hosts — plan {report.plan_digest}")  # type: ignore[attr-defined]
    for column in ("host", "ip", "batch", "load before", "load after", "result", "detail"):
        table.add_column(column)
    colours = {"verified": "green", "planned": "cyan", "not touched": "yellow"}
    for h in report.hosts:  # type: ignore[attr-defined]
        colour = colours.get(h.result, "red")
        table.add_row(
            h.hostname,
            h.ip,
            str(h.batch or "-"),
            f"{h.load_before:.2f}",
            "-" if h.load_after is None else f"{h.load_after:.2f}",
            f"[{colour}]{h.result}[/]",
            h.detail[:80],
        )
    console.print(table)
    for label, names in (
        ("no load data", report.hosts_without_data),  # type: ignore[attr-defined]
        ("series without a host", report.series_without_host),
    ):  # type: ignore[attr-defined]
        if names:
            console.print(f"[yellow]{label}[/]: {', '.join(names[:20])}")
    cooling = report.cooling_down  # type: ignore[attr-defined]
    if cooling:
        shown = ", ".join(f"{name} ({minutes:g} min ago)" for name, minutes in cooling.items())
        console.print(f"[yellow]skipped, restarted within the cooldown[/]: {shown}")
    console.print(report.summary)  # type: ignore[attr-defined]


@app.command(
    "lab",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
)
def lab_command(ctx: typer.Context) -> None:
    """The local ops lab (up, down, status, overload, fail-restart, hosts, reset)."""
    # The lab is a separate program: product code never imports it.
    raise typer.Exit(subprocess.call([sys.executable, "-m", "lab", *ctx.args]))


if __name__ == "__main__":
    app()
