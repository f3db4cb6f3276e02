"""The `opsflow` command line: list and run runbooks, serve them, register blocks, drive the lab.

`opsflow run NAME --param value ...` is generated from each runbook's parameter model, so its
`--help` shows every parameter with its description and default, and values are validated by
the same model the Prefect UI form uses.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from typing import Annotated, Any

import typer
from prefect.blocks.core import Block
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from opsflow.opsapi.models import HostSelector

app = typer.Typer(help="Ops runbooks as Prefect flows.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 120)


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
) -> None:
    """Ops runbooks as Prefect flows."""


@app.command("runbooks")
def runbooks_command() -> None:
    """List the runbooks, their default schedules and what they do."""
    from opsflow.flows.registry import RUNBOOKS

    table = Table("runbook", "schedule", "what it does")
    for runbook in RUNBOOKS.values():
        table.add_row(runbook.name, runbook.cron or "on demand", runbook.summary)
    console.print(table)


@app.command("serve")
def serve_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="Runbooks to serve (default: all).")
    ] = None,
    no_schedules: Annotated[
        bool, typer.Option("--no-schedules", help="Deploy without schedules.")
    ] = False,
    platform_block: Annotated[
        str | None,
        typer.Option("--platform-block", help="Ops Platform block every runbook uses by default."),
    ] = None,
    prometheus_block: Annotated[
        str | None,
        typer.Option("--prometheus-block", help="Prometheus block every runbook uses by default."),
    ] = None,
    alertmanager_block: Annotated[
        str | None,
        typer.Option("--alertmanager-block", help="Alertmanager block for silences, by default."),
    ] = None,
) -> None:
    """Deploy runbooks to the Prefect API in PREFECT_API_URL and run what it schedules."""
    from prefect import serve

    from opsflow.blocks import Alertmanager, OpsPlatform, Prometheus
    from opsflow.flows.deployments import deployments

    chosen = {
        field: block_type.load(name)
        for field, block_type, name in (
            ("platform", OpsPlatform, platform_block),
            ("prometheus", Prometheus, prometheus_block),
            ("alertmanager", Alertmanager, alertmanager_block),
        )
        if name
    }
    serve(*deployments(names or None, schedules=not no_schedules, blocks=chosen))


@app.command("blocks")
def blocks_command(
    action: Annotated[str, typer.Argument(help="register: register opsflow's block types.")],
) -> None:
    """Register opsflow's block types with the Prefect API (`opsflow blocks register`)."""
    if action != "register":
        raise typer.BadParameter(f"unknown action {action!r}; use 'register'")
    from opsflow.blocks.registration import register_block_types

    for slug in register_block_types():
        console.print(f"registered block type [bold]{slug}[/]")


@app.command(
    "lab",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
)
def lab_command(ctx: typer.Context) -> None:
    """The local ops lab (up, down, status, overload, fail-restart, fill-disk, hosts, reset)."""
    # The lab is a separate program: product code never imports it.
    raise typer.Exit(subprocess.call([sys.executable, "-m", "opsflow.lab", *ctx.args]))


# `opsflow run NAME ...`, built from the parameter models ----------------------------------

run_app = typer.Typer(
    help="Run a runbook now (Prefect's embedded API or PREFECT_API_URL).", no_args_is_help=True
)
app.add_typer(run_app, name="run")


def _signature(model: type[BaseModel]) -> inspect.Signature:
    """Typer options for the model's fields (the selector becomes --tag / --hostname-pattern)."""
    parameters = []

    def option(name: str, annotation: Any, default: Any, flag: str, help_text: str) -> None:
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation,
                default=typer.Option(
                    default, flag, help=help_text, show_default=default is not None
                ),
            )
        )

    for name, field in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = field.description or ""
        required = field.is_required()
        default = ... if required else field.get_default(call_default_factory=True)
        args = typing.get_args(field.annotation)
        base = (
            next((a for a in args if a is not type(None)), field.annotation)
            if args
            else field.annotation
        )
        if isinstance(base, type) and issubclass(base, Block):
            option(
                f"{name}_block",
                str | None,
                None,
                f"{flag}-block",
                f"{help_text} (the name of a saved {base.get_block_type_name()} block)",
            )
        elif field.annotation is HostSelector:
            option("tag", list[str] | None, None, "--tag", "Only hosts with this tag (repeatable).")
            option(
                "hostname_pattern",
                str | None,
                None,
                "--hostname-pattern",
                "Only hosts matching this glob.",
            )
        elif base in (bool, int, float, str):
            option(name, base if default is not None else base | None, default, flag, help_text)
        elif typing.get_origin(base) is list and typing.get_args(base)[0] is str:
            option(name, list[str] | None, None, flag, f"{help_text} (repeatable)")
        else:
            option(name, str | None, None, flag, f"{help_text} (JSON)")
    return inspect.Signature(parameters)


def _add_runbook_commands() -> None:
    from opsflow.flows.registry import RUNBOOKS

    for name, runbook in RUNBOOKS.items():

        def command(_name: str = name, **given: Any) -> None:
            _run(_name, given)

        command.__signature__ = _signature(runbook.params)  # type: ignore[attr-defined]
        command.__doc__ = runbook.flow.description
        run_app.command(name, short_help=runbook.summary)(command)


def _values(model: type[BaseModel], given: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    tags, pattern = given.pop("tag", None) or (), given.pop("hostname_pattern", None)
    if "selector" in model.model_fields and (tags or pattern):
        values["selector"] = {"tags": list(tags), "hostname_pattern": pattern}
    for name, value in given.items():
        if value is None or value == ():
            continue
        if name.endswith("_block") and name.removesuffix("_block") in model.model_fields:
            values[name.removesuffix("_block")] = (
                value  # a saved block's name, loaded on validation
            )
            continue
        field = model.model_fields[name]
        base = next(
            (a for a in typing.get_args(field.annotation) if a is not type(None)), field.annotation
        )
        list_of_str = typing.get_origin(base) is list and typing.get_args(base)[:1] == (str,)
        if isinstance(value, str) and base not in (str, int, float, bool) and not list_of_str:
            try:
                value = json.loads(value)
            except ValueError:
                raise typer.BadParameter(f"--{name.replace('_', '-')} must be JSON") from None
        values[name] = list(value) if isinstance(value, tuple) else value
    return values


def _run(name: str, given: dict[str, Any]) -> None:
    from opsflow.flows.registry import RUNBOOKS

    runbook = RUNBOOKS[name]
    try:
        params = runbook.params(**_values(runbook.params, given))
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            where = f"--{field.replace('_', '-')}" if field else "parameters"
            console.print(f"[red]invalid {where}[/]: {error['msg']}")
        raise SystemExit(2) from None
    state = runbook.flow(**{runbook.param_name: params}, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        console.print(f"[red bold]{name} failed[/]: {result}")
        raise SystemExit(1)
    show_result(name, result)
    raise SystemExit(1 if state.is_failed() else 0)


def show_result(name: str, result: Any) -> None:
    """The result's rows as a table (if it has any), then its one-line summary."""
    rows = next(
        (
            v
            for v in vars(result).values()
            if isinstance(v, list) and v and isinstance(v[0], BaseModel | dict)
        ),
        [],
    )
    if rows:
        dicts = [r.model_dump() if isinstance(r, BaseModel) else r for r in rows]
        columns = getattr(result, "table_columns", None) or list(dicts[0])
        table = Table(*(c.replace("_", " ") for c in columns), title=name)
        for row in dicts[:500]:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
    for label in ("hosts_without_data", "series_without_host", "skipped"):
        names = getattr(result, label, None)
        if names:
            console.print(f"[yellow]{label.replace('_', ' ')}[/]: {', '.join(names[:20])}")
    cooling = getattr(result, "cooling_down", None)
    if cooling:
        shown = ", ".join(f"{host} ({minutes:g} min ago)" for host, minutes in cooling.items())
        console.print(f"[yellow]skipped, restarted within the cooldown[/]: {shown}")
    console.print(getattr(result, "summary", result))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    text = str(value).strip()
    return text if len(text) <= 80 else text[:77] + "..."


def main() -> None:
    """Entry point of the `opsflow` console script."""
    _add_runbook_commands()
    app(prog_name="opsflow")


if __name__ == "__main__":
    main()
