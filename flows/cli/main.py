"""The `opsflow` command line: list and run runbooks, serve them, register blocks, drive the lab.

`opsflow --help` and `opsflow runbooks` import neither Prefect nor any runbook (the catalog is
plain data), so they answer at once; `opsflow run NAME` imports only that runbook.
`opsflow run NAME --param value ...` is generated from the runbook's parameter model, so its
`--help` shows every parameter with its description and default, and values are validated by
the same model the Prefect UI form uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from opsflow.flows.cli.alerts import alerts_app
from opsflow.flows.cli.common import (
    check_prefect_api,
    console,
    need_prefect_server,
    prefect_api_failed,
    prefect_errors,
    say_prefect_api_failed,
)
from opsflow.flows.cli.locks import locks_app
from opsflow.flows.cli.server import server_app
from opsflow.flows.runbooks.catalog import CATALOG

# The commands of `opsflow lab` (a separate program: product code never imports it).
LAB_COMMANDS = (
    "up",
    "down",
    "status",
    "hosts",
    "reset",
    "overload",
    "fail-restart",
    "hang-restart",
    "fill-disk",
    "metrics",
)

# opsflow's commands send no telemetry: an ops machine has nothing to report to anyone, and on a
# closed network Prefect's client-side analytics would hold a command at its exit while it
# tries to flush to the internet.
QUIET_PREFECT = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


class RunbookGroup(TyperGroup):
    """`opsflow run`: one subcommand per runbook, built only when it is called."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(CATALOG)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in CATALOG:
            return None
        from opsflow.flows.cli.specs import runbook_command

        return runbook_command(name)


app = typer.Typer(
    help="Ops runbooks as Prefect flows.", no_args_is_help=True, pretty_exceptions_enable=False
)
runbook_commands = typer.Typer(
    cls=RunbookGroup,
    help="Run a runbook now (on the server in PREFECT_API_URL, else opsflow's local server).",
    no_args_is_help=True,
)
app.add_typer(runbook_commands, name="run")
app.add_typer(alerts_app, name="alerts")
app.add_typer(locks_app, name="locks")
app.add_typer(server_app, name="server")


def _show_version(value: bool) -> None:
    if value:
        from opsflow import __version__

        console.print(f"opsflow {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", help="Show tracebacks and Prefect's own log lines, for a bug report."
        ),
    ] = False,
) -> None:
    """Ops runbooks as Prefect flows."""
    if verbose:
        os.environ["OPSFLOW_VERBOSE"] = "1"


@app.command("runbooks")
def runbooks_command() -> None:
    """List the runbooks, their default schedules (UTC) and what they do."""
    table = Table("runbook", "schedule (UTC)", "what it does")
    for entry in CATALOG.values():
        table.add_row(entry.name, entry.cron or "on demand", entry.summary)
    console.print(table)


PlatformBlock = Annotated[
    str | None,
    typer.Option(
        "--platform-block",
        help="Execution backend block every runbook uses by default: NAME, or TYPE/NAME "
        "(ops-platform/NAME, salt-api/NAME, or a backend type of your own).",
    ),
]
PrometheusBlock = Annotated[
    str | None,
    typer.Option("--prometheus-block", help="Prometheus block every runbook uses by default."),
]
AlertmanagerBlock = Annotated[
    str | None,
    typer.Option("--alertmanager-block", help="Alertmanager block for silences, by default."),
]
NoSchedules = Annotated[bool, typer.Option("--no-schedules", help="Deploy without schedules.")]


class ScheduleState(str, Enum):
    active = "active"
    paused = "paused"


Schedules = Annotated[
    ScheduleState | None,
    typer.Option(
        "--schedules",
        help="Deploy the runbooks' schedules active or paused. Default: paused for a new "
        "deployment (nothing restarts hosts until you resume it), as they were for one that "
        "exists.",
    ),
]
RestartOnAlert = Annotated[
    str,
    typer.Option(
        "--restart-on-alert",
        help="The alert whose firing hosts restart-overloaded-hosts is run for (opsflow "
        "alerts serve emits it); '' for no alert trigger.",
    ),
]
Names = Annotated[list[str] | None, typer.Argument(help="Runbooks (default: all).")]


def _deployments(
    command: str,
    names: list[str] | None,
    no_schedules: bool,
    schedules: ScheduleState | None,
    restart_on_alert: str,
    platform_block: str | None,
    prometheus_block: str | None,
    alertmanager_block: str | None,
) -> list[Any]:
    """The runbooks' deployments with the blocks named as defaults; exit 2 on a bad name."""
    unknown = sorted(set(names or ()) - set(CATALOG))
    if unknown:
        console.print(f"[red]unknown runbooks {unknown}; known: {', '.join(CATALOG)}[/]")
        raise typer.Exit(2)
    from opsflow.blocks import Alertmanager, Prometheus
    from opsflow.flows.services.deployments import deployments
    from opsflow.tasks.parameters import PLATFORM_TYPES, load_block

    chosen = {}
    for field, block_types, name in (
        ("platform", PLATFORM_TYPES, platform_block),
        ("prometheus", (Prometheus,), prometheus_block),
        ("alertmanager", (Alertmanager,), alertmanager_block),
    ):
        if name:
            try:
                chosen[field] = load_block(name, block_types)
            except ValueError as exc:
                console.print(f"[red]--{field}-block: {exc}[/]", soft_wrap=True)
                raise typer.Exit(2) from None
    from opsflow.flows.services.deployments import keep_what_the_server_has

    made = deployments(
        names or None,
        schedules=not no_schedules,
        blocks=chosen,
        restart_on_alert=restart_on_alert or None,
        schedules_active=schedules is ScheduleState.active,
    )
    with prefect_errors(command):
        for line in keep_what_the_server_has(made, schedules_given=schedules is not None):
            console.print(line, soft_wrap=True)
    return made


def _say_armed(made: list[Any], where: str) -> None:
    """One line per deployment: what it will start by itself (schedules, triggers)."""
    from opsflow.flows.services.deployments import armed

    for deployment in made:
        console.print(f"deployed [bold]{deployment.name}[/] {where}: {armed(deployment)}")
    if any(s.active is False for d in made for s in d.schedules or []):
        console.print(
            "paused schedules start nothing: resume one in the Prefect UI (the deployment's "
            "Schedules), or deploy again with --schedules active",
            soft_wrap=True,
        )


@app.command("serve")
def serve_command(
    names: Names = None,
    no_schedules: NoSchedules = False,
    schedules: Schedules = None,
    restart_on_alert: RestartOnAlert = "HostOverloaded",
    platform_block: PlatformBlock = None,
    prometheus_block: PrometheusBlock = None,
    alertmanager_block: AlertmanagerBlock = None,
) -> None:
    """Deploy runbooks to the Prefect server in PREFECT_API_URL and run what it schedules."""
    need_prefect_server("opsflow serve")
    made = _deployments(
        "opsflow serve",
        names,
        no_schedules,
        schedules,
        restart_on_alert,
        platform_block,
        prometheus_block,
        alertmanager_block,
    )
    _say_armed(made, "in this process")
    from prefect import serve

    serve(*made)


@app.command("deploy")
def deploy_command(
    work_pool: Annotated[
        str, typer.Option("--work-pool", help="The work pool whose workers run them.")
    ],
    names: Names = None,
    no_schedules: NoSchedules = False,
    schedules: Schedules = None,
    restart_on_alert: RestartOnAlert = "HostOverloaded",
    platform_block: PlatformBlock = None,
    prometheus_block: PrometheusBlock = None,
    alertmanager_block: AlertmanagerBlock = None,
    heartbeat_seconds: Annotated[
        float,
        typer.Option(
            "--heartbeat-seconds",
            min=30,  # Prefect's minimum
            help="The workers' PREFECT_RUNNER_HEARTBEAT_FREQUENCY: a run silent for three "
            "heartbeats is marked Crashed by the automation this creates.",
        ),
    ] = 30,
) -> None:
    """Deploy runbooks to a work pool (the installed package: a worker needs no checkout),
    with the automation that marks runs whose process died as Crashed."""
    need_prefect_server("opsflow deploy")
    made = _deployments(
        "opsflow deploy",
        names,
        no_schedules,
        schedules,
        restart_on_alert,
        platform_block,
        prometheus_block,
        alertmanager_block,
    )
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(work_pool)
        except ObjectNotFound:
            console.print(
                f"[red]--work-pool: no work pool {work_pool!r}; create it with "
                f"prefect work-pool create {work_pool} --type process[/]",
                soft_wrap=True,
            )
            raise typer.Exit(2) from None
    from opsflow.flows.services.crash_detection import NAME
    from opsflow.flows.services.deployments import deploy_to_pool

    if deploy_to_pool(made, work_pool, heartbeat_seconds):
        console.print(f"automation [bold]{NAME}[/] created")
    _say_armed(made, f"to work pool {work_pool}")
    console.print(
        f"a worker runs them: prefect worker start --pool {work_pool} (where opsflow is "
        f"installed; PREFECT_RUNNER_HEARTBEAT_FREQUENCY={heartbeat_seconds:g} so that a dead "
        "run is marked Crashed)",
        soft_wrap=True,
    )


@app.command("init")
def init_command(
    force: Annotated[
        bool, typer.Option("--force", help="Write over a prefect.yaml that is already here.")
    ] = False,
) -> None:
    """Write opsflow's prefect.yaml (every runbook, schedules paused) into this directory, for
    `prefect deploy --all`."""
    from importlib.resources import files

    target = Path.cwd() / "prefect.yaml"
    if target.exists() and not force:
        console.print(
            f"[red]opsflow init: {target} exists: keep it, or write over it with --force[/]",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    target.write_text((files("opsflow.flows.services") / "prefect.yaml").read_text())
    console.print(
        f"wrote {target}; then: prefect work-pool create opsflow --type process && "
        "prefect deploy --all && prefect worker start --pool opsflow (schedules are deployed "
        "paused: resume them in the UI)",
        soft_wrap=True,
    )


@app.command("blocks")
def blocks_command(
    action: Annotated[str, typer.Argument(help="register: register opsflow's block types.")],
) -> None:
    """Register opsflow's block types with the Prefect API (`opsflow blocks register`)."""
    if action != "register":
        console.print(f"[red]unknown action {action!r}: the only one is 'register'[/]")
        raise typer.Exit(2)
    if os.environ.get("PREFECT_API_URL"):
        check_prefect_api("opsflow blocks register")
    from opsflow.blocks.registration import register_block_types
    from opsflow.flows.services.local_server import local_api

    with local_api():
        for slug in register_block_types():
            console.print(f"registered block type [bold]{slug}[/]")


@app.command(
    "lab",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    help=f"The local ops lab: {', '.join(LAB_COMMANDS)} (opsflow lab --help).",
)
def lab_command(ctx: typer.Context) -> None:
    # A separate program: product code never imports it.
    raise typer.Exit(subprocess.call([sys.executable, "-m", "opsflow.lab", *ctx.args]))


def run_app(typer_app: typer.Typer, prog_name: str) -> NoReturn:
    """Run a command-line app so that a usage error (an unknown flag, a bad value) is one line
    naming the flag, exit code 2, not a usage screen."""
    try:
        code = typer_app(prog_name=prog_name, standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except ClickException as exc:
        where = exc.ctx.command_path if getattr(exc, "ctx", None) else prog_name
        console.print(
            f"[red]{escape(where)}: {escape(exc.format_message())}[/] (see {where} --help)",
            soft_wrap=True,
            markup=True,
        )
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        raise SystemExit(130) from None
    except Exception as exc:  # the server went away after the command checked it
        if os.environ.get("OPSFLOW_VERBOSE") or not prefect_api_failed(exc):
            raise
        say_prefect_api_failed(prog_name, exc)
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def main() -> None:
    """Entry point of the `opsflow` console script."""
    for name, value in QUIET_PREFECT.items():
        os.environ.setdefault(name, value)
    run_app(app, "opsflow")


if __name__ == "__main__":
    main()
