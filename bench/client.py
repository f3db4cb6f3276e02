"""Client throughput: host reads over HTTPS, against nginx and against the lab platform.

    .venv/bin/python -m bench.client [--quick] [--servers nginx,lab] [--profile]

The lab platform spends about 0.9 ms of CPU per answer, which caps any client that keeps its
connections. nginx, serving the same host JSON from files over TLS with keep-alive, answers at
loopback speed, so against it the client's own cost shows. Every variant reads the same host
ids, sequentially unless said: the seed's style (`requests.request` per call), raw urllib3 (one
`PoolManager`), a plain `requests.Session` and opsflow's `OpsPlatformClient`. Each runs once
unmeasured, then `repeat` times; the table has the median and the ratios against the seed and
against urllib3 measured on the same server in the same run.

nginx is started by the bench itself (`nginx -p <tmp> -c <tmp>/nginx.conf`, `daemon off`, as
the current user, on a free port of 127.0.0.1) with its config, pid, logs and temp files in a
temporary directory, and a CA and certificate made as the lab makes them (`lab/tls.py`).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3
from rich.console import Console
from rich.table import Table

from bench.baselines import Target, seed_reads
from opsflow.lab.tls import ensure_certificates
from opsflow.opsapi import OpsPlatformClient, Transport

console = Console(width=170)
SEED, URLLIB3 = "seed style (requests.request per call)", "urllib3 PoolManager, sequential"
OPSFLOW = "opsflow client, sequential"
# Against nginx, where the server is not the bound (issue 14, item 3).
TARGETS = {OPSFLOW: {"vs seed": 5.0, "vs urllib3": 0.85}}

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;  # the client under test reads sequentially; one worker keeps up
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{
    worker_connections 512;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ }}
    default_type application/json;
    keepalive_timeout 75s;
    keepalive_requests 1000000;  # nginx closes after 1,000 by default; a pool would reconnect
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {dir}/www;
        location ~ "^/api/v1/hosts/([0-9]+)$" {{
            try_files /hosts/$1.json =404;
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


@dataclass
class Server:
    """Where the reads go: base URL, the platform token and the CA that signed the server."""

    name: str
    url: str
    token: str
    ca: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _user_directive() -> str:
    """Workers run as the master's user; as root, nginx would switch them to `nobody`."""
    if os.geteuid() != 0:
        return ""  # nginx ignores `user` (with a warning) unless it runs as root
    import grp
    import pwd

    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"


@contextmanager
def nginx_hosts(hosts: list[dict[str, Any]], token: str = "unused") -> Iterator[Server]:
    """nginx answering `GET /api/v1/hosts/{id}` with each host's JSON, over TLS, keep-alive.

    Args:
        hosts: host objects as the platform returns them (each with an ``id``).
        token: sent by the clients as the platform's token; nginx ignores it.

    Yields:
        The server; nginx is stopped and its directory removed on exit.

    Raises:
        RuntimeError: nginx is not installed, or did not start (with its error log's end).
    """
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed: bash scripts/setup.sh (Debian's nginx)")
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        root = Path(tmp)
        ca, cert, key = ensure_certificates(root / "tls")
        (root / "tmp").mkdir()
        (root / "www" / "hosts").mkdir(parents=True)
        for host in hosts:
            (root / "www" / "hosts" / f"{host['id']}.json").write_text(
                json.dumps(host, separators=(",", ":"))
            )
        port = _free_port()
        conf = root / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(dir=root, port=port, cert=cert, key=key, user=_user_directive())
        )
        argv = [binary, "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        server = Server("nginx", f"https://127.0.0.1:{port}", token, str(ca))
        try:
            _wait_ready(process, server, hosts[0]["id"], root / "error.log")
            yield server
        finally:
            process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: master and workers
                process.wait()


def _wait_ready(process: subprocess.Popen, server: Server, host_id: Any, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"nginx exited during start-up ({process.returncode}):\n{tail}")
        try:
            if requests.get(f"{server.url}/api/v1/hosts/{host_id}", verify=server.ca, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nginx did not answer on {server.url} within 15 s (log: {log})")


# the variants ------------------------------------------------------------------------------


def variants(server: Server, ids: list[int]) -> dict[str, Callable[[], None]]:
    """Each way of reading every host in `ids` once, by name, seed style first."""
    target = Target(server.url, server.token, server.ca, "")
    headers = {"Authorization": f"Token {server.token}", "Accept": "application/json"}
    urls = [f"{server.url}/api/v1/hosts/{host_id}" for host_id in ids]
    manager = urllib3.PoolManager(
        num_pools=1, maxsize=1, cert_reqs="CERT_REQUIRED", ca_certs=server.ca, timeout=30.0
    )
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the CA
    session.verify = server.ca
    session.headers.update(headers)
    client = OpsPlatformClient(server.url, server.token, transport=Transport(ca_cert=server.ca))

    def raw_urllib3() -> None:
        for url in urls:
            response = manager.request("GET", url, headers=headers)
            if response.status >= 400:
                raise RuntimeError(f"read failed: {response.status}")
            json.loads(response.data)

    def plain_session() -> None:
        for url in urls:
            response = session.get(url, timeout=30)
            response.raise_for_status()
            response.json()

    def opsflow_sequential() -> None:
        for host_id in ids:
            client.get_host(host_id)

    return {
        SEED: lambda: seed_reads(target, ids),
        URLLIB3: raw_urllib3,
        "requests.Session, sequential": plain_session,
        OPSFLOW: opsflow_sequential,
        "opsflow client, get_hosts (8 threads)": lambda: client.get_hosts(ids, workers=8),
    }


def measure(server: Server, ids: list[int], repeat: int) -> list[dict[str, Any]]:
    """One row per variant: the median of `repeat` runs after one unmeasured warm-up.

    The runs are interleaved (every variant once per round), so a neighbour's load on a shared
    machine falls on all of them alike. "CPU µs/read" is this process's CPU time (all
    its threads) per read: the client's own cost, whatever the server did meanwhile.
    """
    runs = variants(server, ids)
    for run in runs.values():
        run()  # warm-up: connections, TLS, imports, caches
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    rows = []
    for name in runs:
        median = statistics.median(wall[name])
        rows.append(
            {
                "server": server.name,
                "variant": name,
                "reads": len(ids),
                "median s": median,
                "reads/s": len(ids) / median,
                "CPU µs/read": statistics.median(cpu[name]) / len(ids) * 1e6,
            }
        )
    by_name = {row["variant"]: row["reads/s"] for row in rows}
    for row in rows:
        row["vs seed"] = row["reads/s"] / by_name[SEED]
        row["vs urllib3"] = row["reads/s"] / by_name[URLLIB3]
        wanted = TARGETS.get(row["variant"], {}) if server.name == "nginx" else {}
        goals = [f">= {goal:g}x {key.removeprefix('vs ')}" for key, goal in wanted.items()]
        row["target"] = ", ".join(goals) or None
        met = all(row[key] >= goal for key, goal in wanted.items())
        row["met"] = ("yes" if met else "no") if wanted else None
    return rows


def target_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One sentence per target, against nginx: the figure, the goal, met or missed."""
    lines = []
    for row in rows:
        wanted = TARGETS.get(row["variant"], {}) if row["server"] == "nginx" else {}
        for key, goal in wanted.items():
            verdict = "met" if row[key] >= goal else "MISSED"
            lines.append(
                f"target: {row['variant']} {key} >= {goal:g}x against nginx: "
                f"{row[key]:.2f}x, {verdict}"
            )
    return lines


# the lab -------------------------------------------------------------------------------------


def lab_hosts(config: Any, admin: Any, count: int) -> tuple[Server, list[dict[str, Any]]]:
    """Reset the lab to `count` hosts; the platform as a `Server`, and its hosts' JSON."""
    from opsflow.lab.stack import lab_secrets

    admin.reset(count)
    token = lab_secrets(config)["platform_token"]
    session = requests.Session()
    session.trust_env = False
    session.verify = str(config.ca_cert)
    session.headers["Authorization"] = f"Token {token}"
    hosts: list[dict[str, Any]] = []
    page = 1
    while len(hosts) < count:
        body = session.get(
            f"{config.platform_url}/api/v1/hosts",
            params={"page": page, "page_size": 500},
            timeout=60,
        ).json()
        hosts += body["data"]
        if not body["data"]:
            break
        page += 1
    return Server("lab platform", config.platform_url, token, str(config.ca_cert)), hosts[:count]


def generated_hosts(count: int) -> list[dict[str, Any]]:
    """The lab's `count` hosts with ids 1..count, as its API returns them, without a lab."""
    from opsflow.lab.api import lab_host_specs

    now = time.time()
    return [{"id": n, **spec, "created_at": now} for n, spec in enumerate(lab_host_specs(count), 1)]


def compare_servers(
    reads: int, repeat: int, lab: tuple[Any, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows for nginx and, given a running lab's (config, admin), for the lab platform.

    Both read the same host ids with the same JSON: the lab's, when there is a lab.
    """
    if lab:
        platform, hosts = lab_hosts(*lab, reads)
    else:
        platform, hosts = None, generated_hosts(reads)
    ids = [int(h["id"]) for h in hosts]
    with nginx_hosts(hosts, token=platform.token if platform else "unused") as nginx:
        rows = measure(nginx, ids, repeat)
    if platform:
        rows += measure(platform, ids, repeat)
    return rows


def profile_opsflow(reads: int, top: int = 30) -> None:
    """cProfile of opsflow's sequential reads against nginx: where the client's time goes."""
    hosts = generated_hosts(reads)
    with nginx_hosts(hosts) as nginx:
        run = variants(nginx, [int(h["id"]) for h in hosts])[OPSFLOW]
        run()
        profiler = cProfile.Profile()
        profiler.runcall(run)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# output -------------------------------------------------------------------------------------


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    from bench.__main__ import _fmt  # (imported here: bench.__main__ imports this module)

    table = Table(title=title)
    columns = list(rows[0])
    for column in columns:
        table.add_column(column, justify="left" if column in ("server", "variant") else "right")
    for row in rows:
        table.add_row(*(_fmt(row[c]) for c in columns))
    console.print(table)
    for line in target_lines(rows):
        console.print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 reads, one repeat (a smoke run)")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--servers", default="nginx,lab", help="nginx, or nginx,lab")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile opsflow's sequential reads on nginx"
    )
    args = parser.parse_args()
    reads, repeat = (300, 1) if args.quick else (args.reads, args.repeat)
    if args.profile:
        profile_opsflow(reads)
        return
    if "lab" not in args.servers.split(","):
        rows = compare_servers(reads, repeat)
    else:
        rows = _with_lab(reads, repeat)
    print_rows(f"Client throughput: {reads} host reads over HTTPS (median of {repeat})", rows)


def _with_lab(reads: int, repeat: int) -> list[dict[str, Any]]:
    """Start a lab of our own (free ports, no Prefect, a slow scrape), measure, stop it."""
    os.environ.setdefault("OPSFLOW_LAB_RECOVERY_SECONDS", "1")
    from bench.__main__ import free_ports
    from opsflow.lab.stack import LabAdmin, LabConfig, down, up

    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        # Prometheus scraping 2,000 hosts every second would share the lab's CPU with the reads.
        config = LabConfig(dir=Path(tmp), ports=free_ports(), hosts=0, scrape_interval="60s")
        up(config, save_blocks=False)
        try:
            return compare_servers(reads, repeat, lab=(config, LabAdmin(config)))
        finally:
            down(config)


if __name__ == "__main__":
    main()
