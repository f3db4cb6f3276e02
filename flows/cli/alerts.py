"""`opsflow alerts serve`: the Alertmanager webhook receiver (see `opsflow.flows.services.alert_receiver`)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from opsflow.flows.cli.common import console, need_prefect_server

TOKEN_ENV = "OPSFLOW_ALERTS_TOKEN"
# the receiver's own defaults (alert_receiver.MAX_*), here so that --help is built without
# importing FastAPI and Prefect's events
MAX_BODY_BYTES, MAX_ALERTS = 1 << 20, 1000

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
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            help="Certificate (chain) file to serve HTTPS with, with --tls-key; without "
            "them a receiver beyond loopback warns that the token crosses the network in clear.",
            dir_okay=False,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", help="The certificate's private key file.", dir_okay=False),
    ] = None,
    max_body_bytes: Annotated[
        int,
        typer.Option(
            "--max-body-bytes",
            min=1024,
            help="A larger notification is refused (413) before or while it is read.",
        ),
    ] = MAX_BODY_BYTES,
    max_alerts: Annotated[
        int,
        typer.Option(
            "--max-alerts",
            min=1,
            help="A notification with more alerts is refused (413); set Alertmanager's "
            "max_alerts to at most this.",
        ),
    ] = MAX_ALERTS,
) -> None:
    """Receive Alertmanager's webhook and emit opsflow.alert.* events (POST /alerts)."""
    token = token_file.read_text().strip() if token_file else os.environ.get(TOKEN_ENV) or None
    if token_file and not token:
        fail(f"--token-file: {token_file} is empty")
    tls = tls_files(tls_cert, tls_key)
    from opsflow.flows.services.alert_receiver import is_loopback

    try:
        loopback = is_loopback(host)
    except OSError as exc:
        fail(f"--host {host}: cannot resolve it ({exc}); give an address, e.g. --host 127.0.0.1")
    if not loopback and not token:
        fail(
            f"--host {host} listens beyond loopback, so Alertmanager must send a bearer token: "
            f"give --token-file FILE (or set {TOKEN_ENV}), or listen on --host 127.0.0.1"
        )
    need_prefect_server("opsflow alerts serve")
    from opsflow.flows.services.alert_receiver import serve_alerts
    from opsflow.tasks.parameters import PLATFORM_TYPES, load_block

    try:
        backend = load_block(platform_block, PLATFORM_TYPES)
    except ValueError as exc:
        console.print(f"[red]--platform-block: {exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    where = f"{'https' if tls else 'http'}://{host}:{port}/alerts"
    console.print(f"receiving Alertmanager's webhook at {where}{'' if token else ' (no token)'}")
    if not loopback and not tls:
        console.print(
            f"[yellow]warning: --host {host} without --tls-cert/--tls-key: the bearer token and "
            "the alerts cross the network unencrypted[/]",
            soft_wrap=True,
        )
    serve_alerts(
        backend,
        host=host,
        port=port,
        token=token,
        timeout=timeout,
        tls=tls,
        max_body_bytes=max_body_bytes,
        max_alerts=max_alerts,
    )


def tls_files(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with, both or neither, checked as a pair now so
    that a bad one is one line (exit 2) instead of a traceback from the server."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = (
            ("--tls-key", "--tls-cert") if cert is None else ("--tls-cert", "--tls-key")
        )
        fail(f"{given} needs {missing} too: give both files, or neither for plain HTTP")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            fail(f"{flag}: cannot read {path}: {exc.strerror or exc}")
    try:  # an encrypted key fails here rather than asking for its password on the terminal
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        fail(
            f"--tls-cert/--tls-key: {cert} and {key} are not a PEM certificate and its own unencrypted key "
            f"({exc.reason or exc})"
        )
    return cert, key


def fail(line: str) -> NoReturn:
    """One red line naming the flag and its fix, exit code 2."""
    console.print(f"[red]{escape(line)}[/]", soft_wrap=True)
    raise typer.Exit(2)
