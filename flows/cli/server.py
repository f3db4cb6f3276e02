"""`opsflow server start|status|stop`: opsflow's local Prefect server (no PREFECT_API_URL).

`opsflow run` starts it on first need; these commands start it ahead of time (a cold start
costs 7-25 s), show where it is, and stop it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from opsflow.flows.cli.common import console

server_app = typer.Typer(
    help="opsflow's local Prefect server, used when PREFECT_API_URL is not set.",
    no_args_is_help=True,
)

Port = Annotated[
    int | None,
    typer.Option(
        "--port",
        min=1,
        max=65535,
        help="Port on 127.0.0.1 (default 4280, or OPSFLOW_SERVER_PORT).",
    ),
]


@server_app.command("start")
def start_command(port: Port = None) -> None:
    """Start it in the background (it keeps running after this command), or find it running."""
    from opsflow.flows.services.local_server import LocalServer, ready

    with _one_line("opsflow server start"):
        server = LocalServer(port=port)
        state, started = server.start()
        if not started and port is not None and port != state.port:
            console.print(
                f"[red]opsflow server start: the local server already runs on port "
                f"{state.port}: stop it first (opsflow server stop) to move it to {port}[/]"
            )
            raise typer.Exit(2)
        with console.status("starting the local Prefect server"):
            ready(server)  # a second `start` at the same time waits for the same server
    said = "started" if started else "already running"
    console.print(
        f"{said}: {state.url} (pid {state.pid}; its UI there; log {server.log_file}); "
        "`opsflow run` uses it while PREFECT_API_URL is not set",
        soft_wrap=True,
    )


@server_app.command("status")
def status_command() -> None:
    """Say whether it runs, where, and whether it answers (exit 1 when it does not run)."""
    from opsflow.flows.services.local_server import LocalServer

    with _one_line("opsflow server status"):
        server = LocalServer()
        state = server.state()
    if state is None:
        console.print("not running (opsflow server start, or any `opsflow run`, starts it)")
        raise typer.Exit(1)
    if not state.alive:
        console.print(
            f"not running: its pid file names process {state.pid}, which is gone "
            "(a crash or a reboot); `opsflow server start` starts it again"
        )
        raise typer.Exit(1)
    answer = "answering" if state.answering else "not answering yet (starting, or stuck)"
    console.print(f"running: {state.url} (pid {state.pid}), {answer}; log {server.log_file}")
    if not state.answering:
        raise typer.Exit(1)


@server_app.command("stop")
def stop_command() -> None:
    """Stop it (runs in progress on it lose their server: stop it when none is running)."""
    from opsflow.flows.services.local_server import LocalServer

    with _one_line("opsflow server stop"):
        state = LocalServer().stop()
    if state is None:
        console.print("not running")
    elif not state.alive:
        console.print(f"not running (process {state.pid} was already gone; its pid file removed)")
    else:
        console.print(f"stopped (pid {state.pid})")


@contextmanager
def _one_line(command: str) -> Iterator[None]:
    """A ServerError is one red line and exit 1."""
    from opsflow.flows.services.local_server import ServerError

    try:
        yield
    except ServerError as error:
        console.print(f"[red]{command}: {error}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
