"""`opsflow alerts serve`: the Alertmanager webhook receiver (see `opsflow.flows.services.alert_receiver`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from opsflow.flows.cli.common import console, need_prefect_server

TOKEN_ENV = "OPSFLOW_ALERTS_TOKEN"

alerts_app = typer.Typer(
    help="Alertmanager -> Prefect events, which trigger the runbooks' deployments.",
    no_args_is_help=True,
)


@alerts_app.command("serve")
def serve_command(
    platform_block: Annotated[
        str,
        typer.Option(
            "--platform-block",
            help="Execution backend block (NAME, or TYPE/NAME such as salt-api/NAME) whose "
            "inventory alerts are matched against.",
        ),
    ] = "default",
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless you say so).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 9095,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help=f"File holding the bearer token Alertmanager must send (or set {TOKEN_ENV}).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, max=60, help="Seconds within which it answers.")
    ] = 10.0,
) -> None:
    """Receive Alertmanager's webhook and emit opsflow.alert.* events (POST /alerts)."""
    need_prefect_server("opsflow alerts serve")
    token = token_file.read_text().strip() if token_file else os.environ.get(TOKEN_ENV) or None
    if token_file and not token:
        console.print(f"[red]--token-file: {token_file} is empty[/]")
        raise typer.Exit(2)
    from opsflow.flows.services.alert_receiver import serve_alerts
    from opsflow.tasks.parameters import PLATFORM_TYPES, load_block

    try:
        backend = load_block(platform_block, PLATFORM_TYPES)
    except ValueError as exc:
        console.print(f"[red]--platform-block: {exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    where = f"http://{host}:{port}/alerts"
    console.print(f"receiving Alertmanager's webhook at {where}{'' if token else ' (no token)'}")
    serve_alerts(backend, host=host, port=port, token=token, timeout=timeout)
