"""opsflow's benchmarks, side by side with the seed's way and a hand-written script.

    bash scripts/bench.sh            # or: .venv/bin/python -m bench [--quick]

Starts its own lab (free loopback ports) and a Prefect API (SQLite), runs each measurement
several times, prints tables with ratios against the baseline measured in the same run, and
writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

os.environ.setdefault("OPSFLOW_LAB_RECOVERY_SECONDS", "1")  # the lab platform inherits it
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import requests  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.baselines import Target, seed_runbook, threaded_runbook  # noqa: E402
from opsflow.lab.stack import LabAdmin, LabConfig, LabPorts, down, lab_secrets, up  # noqa: E402

console = Console(width=120)
ROOT = Path(__file__).parent.parent


def free_ports() -> LabPorts:
    chosen: list[int] = []
    while len(chosen) < len(fields(LabPorts)):
        port = random.randint(21000, 59000)
        ok = True
        for p in (port, port + 1):
            with socket.socket() as sock:
                ok = ok and sock.connect_ex(("127.0.0.1", p)) != 0
        if ok and all(abs(port - other) > 1 for other in chosen):
            chosen.append(port)
    return LabPorts(*chosen)


def prometheus_count(config: LabConfig, promql: str) -> int:
    answer = requests.get(
        f"{config.prometheus_url}/api/v1/query", params={"query": promql}, timeout=30
    ).json()
    result = answer["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def wait(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def prepare(config: LabConfig, admin: LabAdmin, hosts: int, overloaded: int) -> list[str]:
    """A fresh lab of `hosts` hosts, `overloaded` of them at load 8, as Prometheus sees it."""
    admin.reset(hosts)
    names = [h["hostname"] for h in admin.hosts()]
    chosen = random.Random(hosts).sample(names, overloaded)
    for name in chosen:
        admin.overload(name, 8.0)
    wait(
        lambda: (
            prometheus_count(config, "count(node_load1)") == hosts
            and prometheus_count(config, "count(node_load1 > 4)") == overloaded
        ),
        300,
        f"Prometheus to see {hosts} hosts, {overloaded} overloaded",
    )
    return chosen


# 1. client throughput -----------------------------------------------------------------------


def bench_client(
    config: LabConfig, admin: LabAdmin, repeat: int, reads: int
) -> list[dict[str, Any]]:
    """Host reads against nginx (the client's own cost) and the lab platform: bench/client.py."""
    from bench.client import compare_servers

    return compare_servers(reads, repeat, lab=(config, admin))


# 2. the main runbook end to end -----------------------------------------------------------------


def task_runs_of(flow_run_id) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200
        )
    return len(runs)


def vault_requests(config: LabConfig, since: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with config.vault_audit_log.open() as log:
        log.seek(since)
        for line in log:
            entry = json.loads(line)
            if entry.get("type") == "request":
                path = entry["request"]["path"]
                counts[path] = counts.get(path, 0) + 1
    return counts


def bench_runbook(
    config: LabConfig, admin: LabAdmin, sizes: list[int], repeat: int, seed_budget: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from opsflow.flows.restart_overloaded_hosts import restart_overloaded_hosts
    from opsflow.tasks.restart_plan import RestartPolicy

    token = lab_secrets(config)["platform_token"]
    target = Target(config.platform_url, token, str(config.ca_cert), config.prometheus_url)
    rows, vault_rows = [], []
    for size in sizes:
        overloaded = size // 20
        policy = RestartPolicy(
            platform="lab",
            prometheus="lab",
            threshold=4,
            recovery_threshold=2,
            batch_size=50,
            max_hosts=size,
            max_failures=1,
            poll_seconds=0.5,
            verify_window_seconds=120,
            job_timeout_seconds=60,
        )
        measured: dict[str, list[float]] = {
            "opsflow": [],
            "hand-written threaded": [],
            "seed style": [],
        }
        task_runs: list[int] = []
        seed_done = []
        # One unmeasured run first: Prefect creates the hosts' lock limits once per lab, as a
        # long-lived deployment would have them already.
        prepare(config, admin, size, overloaded)
        restart_overloaded_hosts(policy, return_state=True)
        for _ in range(repeat):
            prepare(config, admin, size, overloaded)
            mark = config.vault_audit_log.stat().st_size
            started = time.perf_counter()
            state = restart_overloaded_hosts(policy, return_state=True)
            measured["opsflow"].append(time.perf_counter() - started)
            report = state.result(raise_on_failure=False)
            assert state.is_completed() and len(report.verified) == overloaded, state.message
            task_runs.append(task_runs_of(state.state_details.flow_run_id))
            vault = vault_requests(config, mark)
            vault_rows.append(
                {
                    "hosts": size,
                    "logins": vault.get("auth/approle/login", 0),
                    "secret reads": vault.get("secret/data/opsflow/platform", 0),
                    "all Vault requests": sum(vault.values()),
                    "task runs": task_runs[-1],
                }
            )

            prepare(config, admin, size, overloaded)
            done, seconds = threaded_runbook(target, 4, 2, 50, 0.5)
            assert done == overloaded and sorted(admin.restarts().values()) == [1] * overloaded
            measured["hand-written threaded"].append(seconds)

            prepare(config, admin, size, overloaded)
            done, seconds = seed_runbook(target, 4, 2, 0.5, seed_budget)
            seed_done.append(done)
            measured["seed style"].append(
                seconds * overloaded / max(done, 1)
            )  # projected if cut short
        for name, times in measured.items():
            note = ""
            if name == "seed style" and min(seed_done) < overloaded:
                note = f"projected from {min(seed_done)} of {overloaded} hosts in {seed_budget:g}s"
            rows.append(
                {
                    "hosts": size,
                    "overloaded": overloaded,
                    "variant": name,
                    "median s": statistics.median(times),
                    "task runs": statistics.median(task_runs) if name == "opsflow" else None,
                    "note": note,
                }
            )
        ops = statistics.median(measured["opsflow"])
        for row in rows[-3:]:
            row["time vs opsflow"] = row["median s"] / ops
    return rows, vault_rows


# 3. load_report at scale ---------------------------------------------------------------------


def bench_load_report(
    config: LabConfig, admin: LabAdmin, sizes: list[int], repeat: int
) -> list[dict[str, Any]]:
    from prefect.settings import PREFECT_API_URL

    rows = []
    for size in sizes:
        admin.reset(size)
        admin.overload(admin.hosts()[0]["hostname"], 8.0)
        wait(
            lambda n=size: (
                prometheus_count(config, "count(node_load1)") == n
                and prometheus_count(
                    config, 'count(count by (instance) (node_cpu_seconds_total{mode="idle"}))'
                )
                == n
            ),
            600,
            f"{size} series",
        )
        times, peaks = [], []
        for _ in range(repeat):
            out = subprocess.run(
                [sys.executable, "-m", "bench.load_report_once", str(size)],
                env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
                capture_output=True,
                text=True,
                timeout=900,
                cwd=ROOT,
            )
            if out.returncode != 0:
                platform_log = (config.dir / "logs" / "platform.log").read_text()[-3000:]
                raise RuntimeError(f"{out.stderr[-1500:]}\n--- platform log ---\n{platform_log}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            times.append(result["seconds"])
            peaks.append(result["peak_mb"])
        rows.append(
            {
                "hosts": size,
                "median s": statistics.median(times),
                "peak MB": max(peaks),
                "µs per host": statistics.median(times) / size * 1e6,
            }
        )
    base = rows[0]["µs per host"]
    for row in rows:
        row["per-host time vs smallest"] = row["µs per host"] / base
    return rows


# output -----------------------------------------------------------------------------------------


def show(title: str, rows: list[dict[str, Any]]) -> str:
    table = Table(title=title)
    columns = list(rows[0])
    for column in columns:
        table.add_column(column)
    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_fmt(row[c]) for c in columns]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 1000 else f"{value:,.0f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one repeat (a smoke run)"
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--only",
        default="client,runbook,report,startup,salt",
        help="comma-separated: client, runbook, report, startup, salt",
    )
    args = parser.parse_args()
    repeat = 1 if args.quick else 3
    e2e_sizes = [200] if args.quick else [1000, 10_000]
    report_sizes = [1000, 5000] if args.quick else [1000, 10_000, 100_000]

    from prefect.testing.utilities import prefect_test_harness

    sections = []
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        config = LabConfig(dir=Path(tmp), ports=free_ports(), hosts=0, scrape_interval="1s")
        up(config)
        admin = LabAdmin(config)
        try:
            only = set(args.only.split(","))
            if "client" in only:
                rows = bench_client(config, admin, repeat, 2000)
                sections.append(
                    show("1. Client throughput: host reads over HTTPS, nginx and the lab", rows)
                )
            if "runbook" in only:
                runs = 1 if args.quick else 2
                runbook, vault = bench_runbook(
                    config, admin, e2e_sizes, runs, 60 if args.quick else 90
                )
                sections.append(
                    show("2. restart-overloaded-hosts end to end, 5 % overloaded", runbook)
                )
                sections.append(
                    show("4. Vault round trips per run (OpenBao's audit device)", vault)
                )
            if "salt" in only:
                from bench.salt import bench_salt

                rows = bench_salt(
                    config, admin, [5] if args.quick else [5, 20], 1 if args.quick else 3
                )
                sections.append(show("6. restart-overloaded-hosts over SaltStack", rows))
            if "startup" in only:
                from bench.startup import bench_startup

                rows = bench_startup(config, admin, 1 if args.quick else 5)
                sections.append(show("5. Start-up: the command line and an ad hoc run", rows))
            if "report" in only:
                if report_sizes[-1] >= 50_000:
                    _scrape_every(config, "5s")
                    time.sleep(11)  # two scrapes at the new interval before anything is read
                rows = bench_load_report(config, admin, report_sizes, repeat)
                sections.append(show("3. load-report at scale (fresh process each run)", rows))
        finally:
            down(config)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    Path(args.out).write_text(
        "# Benchmarks\n\n"
        f"Measured by `bash scripts/bench.sh` on {time.strftime('%Y-%m-%d')} ({machine}); "
        f"{'quick run, ' if args.quick else ''}medians of repeated runs; every ratio is against "
        "a baseline measured in the same run. See bench/ for exactly what each variant does.\n\n"
        + "\n".join(sections)
        + "\n"
        + (ROOT / "bench" / "analysis.md").read_text()
    )
    console.print(f"written {args.out}")


def _scrape_every(config: LabConfig, interval: str) -> None:
    """Slow the scrape for 100,000 hosts (a scrape then takes longer than 1 s)."""
    text = (config.dir / "prometheus.yml").read_text()
    for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        text = "\n".join(
            f"  {key}: {interval}" if line.strip().startswith(f"{key}:") else line
            for line in text.splitlines()
        )
    (config.dir / "prometheus.yml").write_text(text + "\n")
    requests.post(f"{config.prometheus_url}/-/reload", timeout=30).raise_for_status()


if __name__ == "__main__":
    main()
