"""What every `opsflow` command shares: the console, and the check for a Prefect server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)


def need_prefect_server(command: str) -> None:
    """Exit 2 with how to fix it unless there is a Prefect server that outlives `command`: the
    one in PREFECT_API_URL, else opsflow's local server when it runs (then this process uses
    it)."""
    if os.environ.get("PREFECT_API_URL"):
        return
    from opsflow.flows.services.local_server import LocalServer

    state = LocalServer().state()
    if state is not None and state.answering:
        os.environ["PREFECT_API_URL"] = state.api_url
        return
    console.print(
        f"[red]{command} needs a Prefect server that outlives it: start opsflow's local one "
        f"(opsflow server start), or set PREFECT_API_URL to yours, e.g. "
        f"PREFECT_API_URL=http://127.0.0.1:4200/api {command}[/]",
        soft_wrap=True,
    )
    raise typer.Exit(2)


def use_local_server(command: str) -> None:
    """With no PREFECT_API_URL: start opsflow's local server (or find it running) and point
    this process at it; call it before Prefect is imported. Exit 1 with one line when it
    cannot start (its port taken by another program)."""
    from opsflow.flows.services.local_server import ServerError
    from opsflow.flows.services.local_server import use_local_server as use

    try:
        use()
    except ServerError as error:
        console.print(f"[red]{command}: {error}[/]", soft_wrap=True)
        raise SystemExit(1) from None


@contextmanager
def prefect_errors(command: str) -> Iterator[None]:
    """The Prefect server unreachable or refusing: one line and exit 1, not a traceback."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        yield
    except (httpx.HTTPError, PrefectHTTPStatusError) as exc:
        url = os.environ.get("PREFECT_API_URL", "")
        console.print(f"[red]{command}: the Prefect API at {url} failed: {exc}[/]"[:400])
        raise typer.Exit(1) from None
