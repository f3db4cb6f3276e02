"""`opsflow lab ...`: bring the local lab up and down, and make trouble in it on purpose."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import requests
import typer
from rich.console import Console
from rich.table import Table

from opsflow.lab.stack import (
    DEFAULT_DIR,
    LabAdmin,
    LabConfig,
    LabPorts,
    down,
    lab_secrets,
    status,
    up,
)

app = typer.Typer(
    help="The local ops lab: platform, OpenBao, Prometheus, Alertmanager.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
DirOption = Annotated[Path, typer.Option("--dir", help="Lab directory.", envvar="OPSFLOW_LAB_DIR")]


class Backend(str, Enum):
    platform = "platform"
    salt = "salt"


class PrefectTopology(str, Enum):
    none = "none"
    postgres = "postgres"
    ha = "ha"


def _fail(message: str, code: int) -> NoReturn:
    console.print(f"[red]opsflow lab: {message}[/]", soft_wrap=True)
    raise typer.Exit(code)


def _admin(directory: Path, hostnames: Sequence[str] = ()) -> LabAdmin:
    """The running lab's admin, once every host named exists (nothing is done otherwise)."""
    config = LabConfig.load(directory.expanduser())
    if not (config.dir / "config.json").exists():
        _fail(f"no lab in {config.dir}: start one with 'opsflow lab up'", 2)
    admin = LabAdmin(config)
    if hostnames:
        with _lab_errors(config):
            known = {h["hostname"] for h in admin.hosts()}
        unknown = [name for name in hostnames if name not in known]
        if unknown:
            _fail(
                f"unknown lab host(s): {', '.join(unknown)}; nothing was changed "
                f"('opsflow lab hosts' lists the {len(known)} hosts)",
                2,
            )
    return admin


@contextmanager
def _lab_errors(config: LabConfig) -> Iterator[None]:
    """The lab platform down or refusing: one line, not a traceback."""
    try:
        yield
    except requests.ConnectionError:
        _fail(f"the lab platform is not answering at {config.platform_url}: 'opsflow lab up'", 1)
    except RuntimeError as exc:
        _fail(str(exc), 1)


@app.command("up")
def up_command(
    directory: DirOption = DEFAULT_DIR,
    hosts: Annotated[int, typer.Option(help="Lab hosts to create on first start.")] = 10,
    backend: Annotated[
        Backend,
        typer.Option(
            help="salt: every lab host is also a salt-minion (a salt-master and salt-api too)."
        ),
    ] = Backend.platform,
    prefect: Annotated[
        PrefectTopology,
        typer.Option(
            help="postgres: a Prefect server on PostgreSQL, a process work pool with --workers "
            "workers, the runbooks deployed and the alert receiver (PREFECT_API_URL printed); "
            "ha: the same with two API servers behind a balancer and Redis."
        ),
    ] = PrefectTopology.none,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Workers with --prefect.")] = 2,
    platform_port: int = 18443,
    vault_port: int = 18200,
    prometheus_port: int = 19090,
    alertmanager_port: int = 19093,
    salt_api_port: int = 18000,
) -> None:
    """Start what is not running, seed Vault and save the Prefect blocks named 'lab'."""
    config = LabConfig(
        dir=directory.expanduser(),
        hosts=hosts,
        ports=LabPorts(
            platform_port, vault_port, prometheus_port, alertmanager_port, salt_api=salt_api_port
        ),
        backend=backend.value,
        prefect=prefect.value,
        workers=workers,
    )
    if (config.dir / "config.json").exists():
        saved = LabConfig.load(config.dir)
        config.ports = saved.ports
        if backend is Backend.platform and saved.backend == "salt":
            config.backend = "salt"  # `up` again keeps Salt running
        if prefect is PrefectTopology.none and saved.prefect != "none":
            config.prefect, config.workers = saved.prefect, saved.workers
    from opsflow.flows.cli.common import check_prefect_api, use_local_server
    from opsflow.flows.services.local_server import MARK, local_api

    if config.prefect == "none":  # the blocks go to that server: it must answer first
        use_local_server("opsflow lab up")
        if not os.environ.get(MARK):
            check_prefect_api("opsflow lab up")
    with console.status("bringing the lab up"), _lab_errors(config), local_api():
        urls = up(config)
    _show(urls)


@app.command("down")
def down_command(directory: DirOption = DEFAULT_DIR) -> None:
    """Stop exactly the processes `up` started."""
    stopped = down(LabConfig.load(directory.expanduser()))
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command("status")
def status_command(directory: DirOption = DEFAULT_DIR) -> None:
    """What runs where."""
    _show(status(LabConfig.load(directory.expanduser())))


@app.command("overload")
def overload_command(
    hostnames: list[str],
    load: Annotated[float, typer.Option(min=0, max=1000, help="Simulated 1-minute load.")] = 8.0,
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Overload lab hosts (their load stays high until their service restarts)."""
    admin = _admin(directory, hostnames)
    for hostname in hostnames:
        admin.overload(hostname, load)
    console.print(f"overloaded {', '.join(hostnames)} to {load:g}")


@app.command("fail-restart")
def fail_restart_command(
    hostnames: list[str],
    undo: Annotated[bool, typer.Option("--undo", help="Let restarts work again.")] = False,
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Make `systemctl restart` fail on lab hosts."""
    admin = _admin(directory, hostnames)
    for hostname in hostnames:
        admin.fail_restart(hostname, not undo)
    console.print(f"restart will {'work' if undo else 'fail'} on {', '.join(hostnames)}")


@app.command("hang-restart")
def hang_restart_command(
    hostnames: list[str],
    undo: Annotated[bool, typer.Option("--undo", help="Let restarts return again.")] = False,
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Make `systemctl restart` hang on lab hosts, the platform never finishing the job."""
    admin = _admin(directory, hostnames)
    for hostname in hostnames:
        admin.hang_restart(hostname, not undo)
    console.print(f"restart will {'return' if undo else 'hang'} on {', '.join(hostnames)}")


class MetricsFault(str, Enum):
    nan = "nan"
    stale = "stale"
    absent = "absent"
    normal = "normal"


@app.command("metrics")
def metrics_command(
    hostname: str,
    fault: MetricsFault,
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Make a host's load series NaN, stale (a 90 s old replayed sample), absent, or normal."""
    admin = _admin(directory, [hostname])
    admin.metrics_fault(hostname, None if fault is MetricsFault.normal else fault.value)
    console.print(f"{hostname}: load series {fault.value}")


@app.command("fill-disk")
def fill_disk_command(
    hostnames: list[str],
    gigabytes: Annotated[
        float,
        typer.Option(min=0.001, max=9, help="Size of the old log to add (the disk has 20 GiB)."),
    ] = 6.0,
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Fill lab hosts' disks with an old compressed log (var/log/*.gz, 10 days old)."""
    admin = _admin(directory, hostnames)
    for hostname in hostnames:
        admin.fill_disk(hostname, gigabytes)
    console.print(f"added {gigabytes:g} GiB of old logs on {', '.join(hostnames)}")


@app.command("hosts")
def hosts_command(directory: DirOption = DEFAULT_DIR) -> None:
    """Every lab host with its simulated load, service state and restarts."""
    table = Table("hostname", "ip", "load", "disk used", "service", "restarts", "restart fails")
    admin = _admin(directory)
    with _lab_errors(LabConfig.load(directory.expanduser())):
        hosts = admin.hosts()
    for h in hosts:
        table.add_row(
            h["hostname"],
            h["ip"],
            f"{h['load']:.2f}",
            f"{h['disk_used'] / 1024**3:.1f} GiB",
            "up" if h["service_up"] else "DOWN",
            str(h["restarts"]),
            "yes" if h["fail_restart"] else "",
        )
    console.print(table)


@app.command("reset")
def reset_command(
    hosts: Annotated[int, typer.Option(min=1, max=200_000, help="How many fresh lab hosts.")] = 10,
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Delete every host and job and create fresh, calm hosts."""
    config = LabConfig.load(directory.expanduser())
    with _lab_errors(config):
        _admin(directory).reset(hosts)
    if config.salt:
        from opsflow.lab.salt import clear_job_cache

        clear_job_cache(config.dir)  # Salt's job history too: no cooldown from before
    console.print(f"lab reset to {hosts} hosts")


@app.command("serve", hidden=True)
def serve_command(
    directory: DirOption = DEFAULT_DIR,
    port: int = 18443,
    prometheus_url: str | None = None,
) -> None:
    """Run the lab platform in the foreground (what `up` starts in the background)."""
    from opsflow.lab.server import serve

    config = LabConfig.load(directory.expanduser())
    values = lab_secrets(config)
    serve(
        config.dir,
        port,
        values["platform_token"],
        prometheus_url,
        readonly_token=values.get("platform_readonly_token"),
    )


def _show(rows: dict[str, str]) -> None:
    table = Table("component", "address")
    for name, value in rows.items():
        table.add_row(name, value)
    console.print(table)
