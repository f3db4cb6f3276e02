"""The lab's Prefect topology: PostgreSQL, `prefect server start`, a process work pool, N
workers, the runbooks deployed from the installed package, and the alert receiver.

`opsflow lab up --prefect postgres --workers 2` runs it on loopback next to the lab:

- PostgreSQL: Debian's binaries, a cluster of the lab's own (never the package's 5432 one),
  started in the foreground as the `postgres` user, on 127.0.0.1 and the lab's port;
- `prefect server start` on that database, leases in files (a server restart keeps them) and
  waiting runs re-polling a freed lock within about a second;
- a process work pool `opsflow`, N `prefect worker start` processes (started from Python, so
  SIGTERM stops them), and the runbooks deployed with the restart runbook's alert trigger;
- `opsflow alerts serve`, where the lab's Alertmanager posts.

Its URL is `PREFECT_API_URL=http://127.0.0.1:<prefect_api port>/api`.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from opsflow.lab.config import LabConfig
from opsflow.lab.processes import _alive as alive
from opsflow.lab.processes import _ensure as ensure
from opsflow.lab.processes import _save_processes as save
from opsflow.lab.processes import _start as start

WORK_POOL = "opsflow"
HEARTBEAT_SECONDS = 30  # Prefect's minimum
DATABASE = "prefect"
# The lab processes of this topology (`down(config, only=PROCESSES)` stops just them).
PROCESSES = ("postgres", "redis", "prefect-", "alert-receiver")


def prefect_env(config: LabConfig) -> dict[str, str]:
    """What a client of the lab's Prefect server (a worker, the receiver, a test) sets."""
    return {
        "PREFECT_API_URL": config.prefect_api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # Pick a run up within half a second (default 10; jittered by 30 %): one small query
        # per worker twice a second, a quarter of a second off an alert's way to its fix.
        "PREFECT_WORKER_QUERY_SECONDS": "0.5",
        # A run silent for three heartbeats is marked Crashed (opsflow's automation).
        "PREFECT_RUNNER_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
    }


def server_env(config: LabConfig, password: str) -> dict[str, str]:
    pg = config.ports.postgres
    return {
        "PREFECT_HOME": str(config.dir / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": (
            f"postgresql+asyncpg://postgres:{password}@127.0.0.1:{pg}/{DATABASE}"
        ),
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
            "prefect.server.concurrency.lease_storage.filesystem"
        ),
        "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
        "PREFECT_UI_API_URL": config.prefect_api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_API_URL": "",
    }


def postgres_binary(name: str) -> str:
    """Debian's PostgreSQL binaries (`apt-get install postgresql`), newest version first."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not found:
        raise RuntimeError(f"lab: PostgreSQL's {name} is not installed: apt-get install postgresql")
    return found[0]


def postgres_dir(config: LabConfig) -> Path:
    """The cluster's directory. As root, PostgreSQL runs as `postgres`, which cannot enter a
    root-only lab directory: the cluster then lives in a postgres-owned directory in /var/tmp
    (named after the lab) with a link to it in the lab directory."""
    link = config.dir / "postgres"
    if os.geteuid() != 0:
        return link
    digest = hashlib.sha256(str(config.dir.resolve()).encode()).hexdigest()[:12]
    real = Path("/var/tmp") / f"opsflow-lab-postgres-{digest}"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(real)
    return real


def as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def init_postgres(config: LabConfig, password: str) -> Path:
    """Create the cluster once (the password in a 0600 file, read by initdb, never argv)."""
    data = postgres_dir(config)
    if (data / "PG_VERSION").exists():
        return data
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    with tempfile.TemporaryDirectory(prefix="opsflow-initdb-") as scratch:
        pwfile = Path(scratch) / "pw"
        pwfile.touch(mode=0o600)
        pwfile.write_text(password)
        if os.geteuid() == 0:
            for path in (data, Path(scratch), pwfile):
                shutil.chown(path, "postgres", "postgres")
        run(
            as_postgres(
                [
                    postgres_binary("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer" if os.geteuid() == 0 else "--auth-local=trust",
                ]
            ),
            "initdb",
        )
    return data


def run(argv: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a set-up command; its failure is a RuntimeError ending with what it printed."""
    try:
        return subprocess.run(
            argv, check=True, capture_output=True, text=True, timeout=300, **kwargs
        )
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or exc.stdout or "").strip()[-1500:]
        raise RuntimeError(f"lab: {what} failed (exit {exc.returncode}):\n{said}") from None


def postgres_argv(config: LabConfig, data: Path) -> list[str]:
    return as_postgres(
        [
            postgres_binary("postgres"),
            "-D",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={config.ports.postgres}",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off",  # a lab database: speed over durability across a power cut
        ]
    )


def create_database(config: LabConfig, data: Path) -> None:
    """The `prefect` database, once."""
    psql = as_postgres(
        [
            postgres_binary("psql"),
            "-h",
            str(data),
            "-p",
            str(config.ports.postgres),
            "-U",
            "postgres",
            "-tAc",
        ]
    )
    exists = run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"], "psql")
    if exists.stdout.strip() != "1":
        run([*psql, f"CREATE DATABASE {DATABASE}"], "createdb")


def server_argv(port: int, services: bool = True) -> list[str]:
    argv = python("prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port))
    return argv if services else [*argv, "--no-services"]


def ha_env(config: LabConfig) -> dict[str, str]:
    """What every process of the HA server shares through Redis instead of its own memory:
    messages, the event ordering, the leases (host locks) and background tasks."""
    redis = f"redis://127.0.0.1:{config.ports.redis}"
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": f"{redis}/0",
        "PREFECT_SERVER_DOCKET_URL": f"{redis}/1",
    }


def redis_argv(config: LabConfig) -> list[str]:
    directory = config.dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("lab: redis-server is not installed: apt-get install redis-server")
    return [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(config.ports.redis),
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
    ]


def python(module: str, *args: str) -> list[str]:
    """`python -m module args...` with this interpreter (the lab's venv)."""
    return [sys.executable, "-m", module, *args]


def balancer_argv(config: LabConfig) -> list[str]:
    servers = (config.ports.prefect_api_a, config.ports.prefect_api_b)
    to = [arg for port in servers for arg in ("--to", f"127.0.0.1:{port}")]
    return python("opsflow.lab.tcp_balancer", "--port", str(config.ports.prefect_api), *to)


def worker_argv(index: int) -> list[str]:
    name = f"lab-worker-{index}"
    return python(
        "prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process", "--name", name
    )


def receiver_argv(config: LabConfig) -> list[str]:
    return python(
        "opsflow.flows.cli.main",
        *("alerts", "serve", "--platform-block", f"ops-platform/{config.block_name}"),
        *("--port", str(config.ports.alert_receiver)),
        *("--token-file", str(receiver_token_file(config))),
    )


def receiver_token_file(config: LabConfig) -> Path:
    return config.dir / "alert-receiver.token"


def server_ready(port: int) -> bool:
    return requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).ok


def receiver_ready(config: LabConfig) -> bool:
    return requests.get(f"http://127.0.0.1:{config.ports.alert_receiver}/healthz", timeout=2).ok


def deploy(config: LabConfig) -> None:
    """Block types, the lab's blocks, the work pool and every runbook's deployment, in the
    lab's Prefect server (run in a subprocess pointed at it)."""
    run(
        python("opsflow.lab.prefect_stack", str(config.dir)),
        "deploying the runbooks",
        env={**os.environ, **prefect_env(config)},
    )


def _deploy_here(directory: Path) -> None:
    """What `deploy` runs, with PREFECT_API_URL set to the lab's server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists

    from opsflow.blocks import OpsPlatform, Prometheus
    from opsflow.blocks.registration import register_block_types
    from opsflow.flows.services.deployments import (
        deploy_to_pool,
        deployments,
        engine_job_template,
    )
    from opsflow.lab.lab_blocks import save_lab_blocks
    from opsflow.lab.vault_seed import stored_approles

    config = LabConfig.load(directory)
    register_block_types()
    save_lab_blocks(config, stored_approles(config))
    with get_client(sync_client=True) as client:
        template = engine_job_template()
        try:
            client.create_work_pool(
                WorkPoolCreate(name=WORK_POOL, type="process", base_job_template=template)
            )
        except ObjectAlreadyExists:  # a lab started again: its pool as this version makes it
            client.update_work_pool(WORK_POOL, WorkPoolUpdate(base_job_template=template))
    blocks = {
        "platform": OpsPlatform.load(config.block_name),
        "prometheus": Prometheus.load(config.block_name),
    }
    deploy_to_pool(deployments(schedules=False, blocks=blocks), WORK_POOL, HEARTBEAT_SECONDS)


def ensure_prefect(config: LabConfig, processes: dict[str, dict[str, Any]], password: str) -> None:
    """PostgreSQL, the server, the deployments, the workers and the receiver (what is not
    running yet)."""
    data = init_postgres(config, password)
    ensure(
        config,
        processes,
        "postgres",
        config.ports.postgres,
        postgres_argv(config, data),
        lambda: (data / f".s.PGSQL.{config.ports.postgres}").exists(),
    )
    create_database(config, data)
    if config.prefect == "ha":
        fresh = ensure_ha_server(config, processes, password)
    else:
        fresh = ensure(
            config,
            processes,
            "prefect-server",
            config.ports.prefect_api,
            server_argv(config.ports.prefect_api),
            lambda: server_ready(config.ports.prefect_api),
            env=server_env(config, password),
        )
    if fresh:
        deploy(config)
    env = prefect_env(config)
    for index in range(1, config.workers + 1):
        name = f"prefect-worker-{index}"
        if not (processes.get(name) and alive(processes[name])):
            processes[name] = start(config, name, worker_argv(index), env)
            save(config, processes)
    ensure(
        config,
        processes,
        "alert-receiver",
        config.ports.alert_receiver,
        receiver_argv(config),
        lambda: receiver_ready(config),
        env=env,
    )


def ensure_ha_server(
    config: LabConfig, processes: dict[str, dict[str, Any]], password: str
) -> bool:
    """Redis, two API servers (no services) one after the other (the first migrates the
    database), the background services in a process of their own, and the balancer in front
    at the API port; True when the first API server was started now."""
    ensure(
        config,
        processes,
        "redis",
        config.ports.redis,
        redis_argv(config),
        lambda: _redis_ready(config.ports.redis),
    )
    env = {**server_env(config, password), **ha_env(config)}
    fresh = False
    for name, port in (
        ("prefect-server-a", config.ports.prefect_api_a),
        ("prefect-server-b", config.ports.prefect_api_b),
    ):
        started = ensure(
            config,
            processes,
            name,
            port,
            server_argv(port, services=False),
            lambda port=port: server_ready(port),
            env=env,
        )
        fresh = fresh or (started and name == "prefect-server-a")
    if not (processes.get("prefect-services") and alive(processes["prefect-services"])):
        argv = python("prefect", "server", "services", "start")
        processes["prefect-services"] = start(config, "prefect-services", argv, env)
        save(config, processes)
    ensure(
        config,
        processes,
        "prefect-balancer",
        config.ports.prefect_api,
        balancer_argv(config),
        lambda: server_ready(config.ports.prefect_api),
    )
    return fresh


def _redis_ready(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


if __name__ == "__main__":
    _deploy_here(Path(sys.argv[1]))
