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
    """Exit 2 with how to fix it unless PREFECT_API_URL names a server that outlives `command`."""
    if not os.environ.get("PREFECT_API_URL"):
        console.print(
            f"[red]{command} needs a Prefect server that outlives it: start one "
            "(prefect server start) and set PREFECT_API_URL, e.g. "
            f"PREFECT_API_URL=http://127.0.0.1:4200/api {command}[/]",
            soft_wrap=True,
        )
        raise typer.Exit(2)


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
