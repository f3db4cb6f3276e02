"""Scale-out benchmarks on the lab's `--prefect postgres` topology:

1. runs per minute of the restart runbook that the workers sustain (100 hosts, 5 overloaded
   per run, each run for its own 5), with two workers against one worker measured in the same
   run (the baseline);
2. alert to verified fix: overload a host, and time until its alert-triggered run ends, split
   into Prometheus + Alertmanager (to the receiver's event), the trigger (to the flow run),
   worker pickup (to the run's start) and the run (restart, health check, verification).

    .venv/bin/python -m bench.scale [--runs 20] [--alerts 5] [--out docs/scaling-bench.md]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.console import Console
from rich.table import Table

from bench.__main__ import free_ports
from opsflow.flows.deployments import set_alert_triggers
from opsflow.lab.prefect_stack import postgres_dir
from opsflow.lab.stack import LabAdmin, LabConfig, down, up

RESTART = "restart-overloaded-hosts/restart-overloaded-hosts"
# Each run has hosts of its own; the cooldown would only see the previous round's restarts.
FAST = {"batch_size": 5, "poll_seconds": 0.5, "verify_window_seconds": 30, "cooldown_minutes": 0}
console = Console(width=120)


def runs_per_minute(config: LabConfig, admin: LabAdmin, runs: int) -> float:
    """Start `runs` runs at once, each for its own 5 overloaded hosts; runs per minute."""
    admin.reset(100)
    names = [h["hostname"] for h in admin.hosts()]
    groups = [names[i * 5 : i * 5 + 5] for i in range(runs)]
    for group in groups:
        for name in group:
            admin.overload(name, 8.0)
    time.sleep(3)  # two scrapes: Prometheus sees them all
    with temporary_settings({PREFECT_API_URL: config.prefect_api_url}):
        with get_client(sync_client=True) as client:
            defaults = client.read_deployment_by_name(RESTART).parameters["policy"]
        started = time.monotonic()
        ids = [
            run_deployment(
                RESTART,
                parameters={"policy": {**defaults, **FAST, "selector": {"hostnames": group}}},
                timeout=0,
            ).id
            for group in groups
        ]
        with get_client(sync_client=True) as client:
            while True:
                states = [client.read_flow_run(i).state for i in ids]
                if all(s and s.is_final() for s in states):
                    break
                time.sleep(0.5)
        took = time.monotonic() - started
    failed = [s.message for s in states if not s.is_completed()]
    if failed:
        raise RuntimeError(f"{len(failed)} runs did not complete: {failed[:3]}")
    verified = sum("5 hosts restarted and verified" in (s.message or "") for s in states)
    if verified != runs:
        raise RuntimeError(f"{runs - verified} runs did not verify 5 hosts: {states[:3]}")
    return runs / took * 60


def alert_to_fix(config: LabConfig, admin: LabAdmin, hostname: str) -> dict[str, float]:
    """Overload `hostname`; seconds to each step of its alert-triggered run."""
    with temporary_settings({PREFECT_API_URL: config.prefect_api_url}):
        with get_client(sync_client=True) as client:
            known = {r.id for r in client.read_flow_runs()}
            overloaded = time.time()
            admin.overload(hostname, 8.0)
            while True:
                new = [r for r in client.read_flow_runs() if r.id not in known]
                if new and new[0].state and new[0].state.is_final():
                    break
                time.sleep(0.25)
            [event] = client.read_events(
                EventFilter(
                    event=EventNameFilter(name=["opsflow.alert.firing"]),
                    resource=EventResourceFilter(id=[f"opsflow.host.{hostname}"]),
                ),
                limit=1,
            ).events
    run = new[0]
    if not run.state.is_completed():
        raise RuntimeError(f"the alert's run did not complete: {run.state.message}")
    steps = {
        "Prometheus + Alertmanager": event.occurred.timestamp() - overloaded,
        "trigger": run.created.timestamp() - event.occurred.timestamp(),
        "worker pickup": run.start_time.timestamp() - run.created.timestamp(),
        "run (restart, verify)": run.end_time.timestamp() - run.start_time.timestamp(),
    }
    steps["overload to verified fix"] = run.end_time.timestamp() - overloaded
    return steps


def alert_trigger(config: LabConfig, enabled: bool) -> None:
    with temporary_settings({PREFECT_API_URL: config.prefect_api_url}):
        set_alert_triggers(enabled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per throughput round (<=20)")
    parser.add_argument("--alerts", type=int, default=5, help="overloads timed end to end")
    parser.add_argument("--out", default=None, help="also write the tables (markdown) here")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="opsflow-bench-scale-"))
    config = LabConfig(dir=directory, ports=free_ports(), hosts=10, prefect="postgres", workers=2)
    admin = LabAdmin(config)
    lines: list[str] = []
    try:
        with console.status("lab up with --prefect postgres --workers 2"):
            up(config)
        alert_trigger(config, enabled=False)
        rates: dict[int, float] = {}
        for workers in (1, 2):
            if workers == 1:
                down(config, only=("prefect-worker-2",))
            else:
                up(config, save_blocks=False)
                alert_trigger(config, enabled=False)
            runs_per_minute(config, admin, 2)  # warm-up: imports cached, pool connections up
            rates[workers] = statistics.median(
                runs_per_minute(config, admin, args.runs) for _ in range(3)
            )
        table = Table(title=f"restart runbook: {args.runs} runs at once, 5 hosts each, 100 hosts")
        table.add_column("workers")
        table.add_column("runs per minute (median of 3)", justify="right")
        table.add_column("vs one worker", justify="right")
        for workers, rate in rates.items():
            table.add_row(str(workers), f"{rate:.1f}", f"{rate / rates[1]:.2f}x")
        console.print(table)
        lines += ["| workers | runs per minute | vs one worker |", "|---|---:|---:|"]
        lines += [f"| {w} | {r:.1f} | {r / rates[1]:.2f}x |" for w, r in rates.items()]

        admin.reset(10)
        time.sleep(3)
        alert_trigger(config, enabled=True)
        names = [h["hostname"] for h in admin.hosts()][: args.alerts]
        timings: list[dict[str, float]] = []
        for name in names:
            timings.append(alert_to_fix(config, admin, name))
            admin.overload(name, None)
        table = Table(title=f"alert to verified fix, {len(timings)} overloads (seconds)")
        table.add_column("step")
        table.add_column("median", justify="right")
        table.add_column("min", justify="right")
        table.add_column("max", justify="right")
        lines += ["", "| step | median s | min s | max s |", "|---|---:|---:|---:|"]
        for step in timings[0]:
            values = [t[step] for t in timings]
            row = [f"{statistics.median(values):.1f}", f"{min(values):.1f}", f"{max(values):.1f}"]
            table.add_row(step, *row)
            lines.append(f"| {step} | {' | '.join(row)} |")
        console.print(table)
    finally:
        down(config)
        shutil.rmtree(postgres_dir(config), ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
