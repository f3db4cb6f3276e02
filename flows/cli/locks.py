"""`opsflow locks`: the host locks held now, and freeing the ones whose run is gone."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from opsflow.flows.cli.common import console, need_prefect_server, prefect_errors

locks_app = typer.Typer(
    help="Host locks: which run holds which host; free the ones left by ended runs.",
    invoke_without_command=True,
)


@locks_app.callback()
def list_command(ctx: typer.Context) -> None:
    """List the host locks held now, the run holding each and that run's state."""
    if ctx.invoked_subcommand:
        return
    need_prefect_server("opsflow locks")
    from opsflow.tasks.host_locks import held_locks

    with prefect_errors("opsflow locks"):
        locks = held_locks(_lease_reader())
    if not locks:
        console.print("no host lock is held")
        return
    table = Table("host id", "lock", "held by run", "run state", "stale")
    for lock in locks:
        table.add_row(
            lock.host_id,
            lock.name,
            f"{lock.flow_run_name} ({lock.flow_run_id})" if lock.flow_run_id else "unknown",
            lock.state or "unknown",
            lock.why_stale() or "no",
        )
    console.print(table)


@locks_app.command("release")
def release_command(
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="Free the locks whose run ended (the only release there is).",
        ),
    ] = False,
    ended_seconds_ago: Annotated[
        float,
        typer.Option(
            "--ended-seconds-ago",
            min=0,
            help="How long ago the holder run must have ended: by 90 s its lease (60 s) has "
            "surely run out, so a lock still held then will never be freed by Prefect.",
        ),
    ] = 90,
) -> None:
    """Free the locks a finished or crashed run left held (never a live run's)."""
    if not stale:
        console.print(
            "[red]opsflow locks release: say --stale (only locks of ended runs are freed)[/]"
        )
        raise typer.Exit(2)
    need_prefect_server("opsflow locks release")
    from datetime import timedelta

    from opsflow.tasks.host_locks import held_locks, release_stale

    after = timedelta(seconds=ended_seconds_ago)
    leases = _lease_reader()
    with prefect_errors("opsflow locks release"):
        freed = release_stale(after, leases)
        left = [lock for lock in held_locks(leases) if not lock.stale(after)]
    for lock in freed:
        console.print(f"freed {lock.name} (host {lock.host_id}): {lock.why_stale(after)}")
    console.print(
        f"{len(freed)} stale lock(s) freed; {len(left)} held by live or unknown runs left alone"
    )


def _lease_reader() -> Callable[[], set[str]] | None:
    """On opsflow's local server the leases are files this command can read: a lock no lease
    holds is stale whatever its run's state says (its server died with the lease)."""
    from opsflow.flows.services.local_server import LocalServer

    server = LocalServer()
    return server.leased_limits if server.serves(os.environ.get("PREFECT_API_URL")) else None
