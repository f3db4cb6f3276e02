"""What every `opsflow` command shares: the console, and the check for a Prefect server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperOption

console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)


def _flags_without_a_type(self: TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: typer would show `--dry-run <bool>` (and `--help <bool>`) in
    help, as if it wanted one."""
    if self.is_flag and self.metavar is None:
        return ""
    return _display_type_rich(self, ctx)


_display_type_rich = TyperOption.display_type_rich
TyperOption.display_type_rich = _flags_without_a_type  # type: ignore[method-assign]


def need_prefect_server(command: str) -> None:
    """Exit 2 with how to fix it unless there is a Prefect server that outlives `command`: the
    one in PREFECT_API_URL, else opsflow's local server when it runs (then this process uses
    it)."""
    if os.environ.get("PREFECT_API_URL"):
        check_prefect_api(command)
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
    cannot start (its port taken by another program). With PREFECT_API_URL: nothing (see
    `check_prefect_api`)."""
    if os.environ.get("PREFECT_API_URL"):
        return
    from opsflow.flows.services.local_server import ServerError
    from opsflow.flows.services.local_server import use_local_server as use

    try:
        use()
    except ServerError as error:
        console.print(f"[red]{command}: {error}[/]", soft_wrap=True)
        raise SystemExit(1) from None


def check_prefect_api(command: str, timeout: float = 5) -> None:
    """Exit 1 with one line unless the Prefect API in PREFECT_API_URL answers its health check
    (a server that is down, or an address mistyped, before any work)."""
    problem = prefect_api_problem(os.environ["PREFECT_API_URL"], timeout)
    if problem:
        console.print(f"[red]{command}: {problem}[/]", soft_wrap=True)
        raise SystemExit(1)


def prefect_api_problem(api: str, timeout: float = 5) -> str | None:
    """What is wrong with the Prefect API at `api`, in one line; None when it answers.

    Example:
        >>> prefect_api_problem("http://127.0.0.1:9/api")
        'the Prefect API at http://127.0.0.1:9/api does not answer: connection refused (start the server, or correct PREFECT_API_URL; unset it to use opsflow\'s local server)'
    """
    import urllib.error
    import urllib.parse
    import urllib.request

    fix = "start the server, or correct PREFECT_API_URL; unset it to use opsflow's local server"
    if urllib.parse.urlsplit(api).scheme not in ("http", "https"):
        return f"PREFECT_API_URL={api!r} is not an address: give http(s)://host:port/api"
    url = api.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - http(s) only
            if answer.status == 200:
                return None
            status = f"HTTP {answer.status}"
    except urllib.error.HTTPError as error:
        status = f"HTTP {error.code} at {url}"
        if error.code in (401, 403):
            return (
                f"the Prefect API at {api} refused opsflow ({status}): set PREFECT_API_KEY "
                "or PREFECT_API_AUTH_STRING"
            )
        if error.code == 404:
            return (
                f"the Prefect API at {api} was not found ({status}): PREFECT_API_URL is the "
                "API's address, usually ending in /api"
            )
    except OSError as error:
        reason = getattr(error, "reason", error)
        said = getattr(reason, "strerror", None) or str(reason)
        return f"the Prefect API at {api} does not answer: {said.lower()} ({fix})"
    return f"the Prefect API at {api} does not answer as one ({status}) ({fix})"


@contextmanager
def prefect_errors(command: str) -> Iterator[None]:
    """The Prefect server unreachable or refusing: one line and exit 1, not a traceback."""
    try:
        yield
    except Exception as exc:
        if not prefect_api_failed(exc):
            raise
        say_prefect_api_failed(command, exc)
        raise typer.Exit(1) from None


def prefect_api_failed(exc: BaseException) -> bool:
    """The Prefect API unreachable or refusing (httpx's and Prefect's errors), known without
    importing either: a command that never loaded them cannot have met them."""
    httpx = sys.modules.get("httpx")
    exceptions = sys.modules.get("prefect.exceptions")
    kinds = tuple(
        kind
        for kind in (
            getattr(httpx, "HTTPError", None),
            getattr(exceptions, "PrefectHTTPStatusError", None),
        )
        if kind is not None
    )
    return bool(kinds) and isinstance(exc, kinds)


def say_prefect_api_failed(command: str, exc: BaseException) -> None:
    url = os.environ.get("PREFECT_API_URL", "")
    said = str(exc) or type(exc).__name__
    line = f"{command}: the Prefect API at {url} failed: {said}"[:400]
    console.print(f"[red]{escape(line)}[/]", soft_wrap=True)
