"""Scale-out benchmarks on the lab's `--prefect postgres` topology:

1. runs per minute of the restart runbook that the workers sustain (100 hosts, 5 overloaded
   per run, each run for its own 5), with two workers against one worker measured in the same
   run (the baseline);
2. the host lock hand-over: one holder gives a lock back, a run waiting for it takes it;
3. alert to verified fix: overload a host, and time until its alert-triggered run ends, split
   into Prometheus (scrape and rule), the rule's `for:` with Alertmanager's group_wait and the
   receiver (to its event), the trigger (to the flow run), worker pickup (to the run's start),
   and the run's own steps (inventory and locks, the restart job, verification, report).

    .venv/bin/python -m bench.scale [--runs 20] [--rounds 3] [--alerts 5]

(also part of `python -m bench`, which writes docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.console import Console

from bench.__main__ import free_ports, show
from opsflow.flows.services.deployments import set_alert_triggers
from opsflow.lab.prefect_stack import postgres_dir
from opsflow.lab.stack import LabAdmin, LabConfig, down, up

RESTART = "restart-overloaded-hosts/restart-overloaded-hosts"
ALERT_FOR_SECONDS = 5  # the lab's HostOverloaded rule
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
    """Overload `hostname`; seconds spent in each step until its alert-triggered run ends."""
    with temporary_settings({PREFECT_API_URL: config.prefect_api_url}):
        with get_client(sync_client=True) as client:
            known = {r.id for r in client.read_flow_runs()}
            overloaded = time.time()
            admin.overload(hostname, 8.0)
            active_at = None
            while True:
                active_at = active_at or _alert_active_at(config, hostname)
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
            # The server records task runs from their events in batches, once a second (as
            # opsflow's local server does): a run's last task may end on record after the run.
            deadline = time.monotonic() + 10
            while True:
                tasks = {
                    t.name.rsplit("-", 1)[0]: t
                    for t in client.read_task_runs(
                        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
                    )
                }
                recorded = [tasks.get(n) for n in ("Execute job", "Wait for recovery")]
                if all(t and t.end_time for t in recorded) or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
    if not run.state.is_completed():
        raise RuntimeError(f"the alert's run did not complete: {run.state.message}")
    execute, verify = tasks["Execute job"], tasks["Wait for recovery"]
    active = active_at or overloaded
    return {
        "Prometheus: scrape and rule (pending)": active - overloaded,
        f"rule `for: {ALERT_FOR_SECONDS}s`, Alertmanager group_wait, receiver": (
            event.occurred.timestamp() - active
        ),
        "trigger (event to flow run)": run.created.timestamp() - event.occurred.timestamp(),
        "worker pickup (poll, process start)": (
            run.start_time.timestamp() - run.created.timestamp()
        ),
        "run: inventory, load, locks": execute.start_time.timestamp() - run.start_time.timestamp(),
        "run: restart job": verify.start_time.timestamp() - execute.start_time.timestamp(),
        "run: verification": verify.end_time.timestamp() - verify.start_time.timestamp(),
        "run: report": run.end_time.timestamp() - verify.end_time.timestamp(),
        "overload to verified fix": run.end_time.timestamp() - overloaded,
    }


def _alert_active_at(config: LabConfig, hostname: str) -> float | None:
    """When Prometheus saw the host's HostOverloaded alert become active (pending), if it has."""
    alerts = requests.get(f"{config.prometheus_url}/api/v1/alerts", timeout=5).json()
    for alert in alerts["data"]["alerts"]:
        if alert["labels"].get("hostname") == hostname or hostname in str(alert["labels"]):
            return datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")).timestamp()
    return None


HAND_OVER = """
import json, sys, threading, time
from opsflow.tasks.host_locks import host_locks

host_id, rounds = sys.argv[1], int(sys.argv[2])


def hold(times):
    with host_locks([host_id]):
        time.sleep(1.5)
    times["released"] = time.perf_counter()


gaps = []
for _ in range(rounds):
    times = {}
    holder = threading.Thread(target=hold, args=(times,))
    holder.start()
    time.sleep(0.5)  # the first holds it; the second now waits for it
    with host_locks([host_id], wait_seconds=30) as (ours, _):
        times["acquired"] = time.perf_counter()
        assert ours == [host_id]
    holder.join()
    gaps.append(times["acquired"] - times["released"])
print(json.dumps(gaps))
"""


def lock_hand_over(config: LabConfig, admin: LabAdmin, rounds: int) -> list[float]:
    """Seconds between one holder giving a host lock back and a waiting one getting it (in a
    process of its own whose threads all talk to the lab's server)."""
    host_id = str(admin.hosts()[0]["id"])
    done = subprocess.run(
        [sys.executable, "-c", HAND_OVER, host_id, str(rounds)],
        env={**os.environ, "PREFECT_API_URL": config.prefect_api_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def alert_trigger(config: LabConfig, enabled: bool) -> None:
    with temporary_settings({PREFECT_API_URL: config.prefect_api_url}):
        set_alert_triggers(enabled)


def bench_scale(runs: int, rounds: int, alerts: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Start the lab's `--prefect postgres --workers 2` topology of its own; measure runs per
    minute (one worker, the baseline, then two), the lock hand-over gap, and alert to verified
    fix; return (title, rows) per table."""
    directory = Path(tempfile.mkdtemp(prefix="opsflow-bench-scale-"))
    config = LabConfig(dir=directory, ports=free_ports(), hosts=10, prefect="postgres", workers=2)
    admin = LabAdmin(config)
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    try:
        with console.status("lab up with --prefect postgres --workers 2"):
            up(config, save_blocks=False)  # its blocks go to its own server, with the deployments
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
                runs_per_minute(config, admin, runs) for _ in range(rounds)
            )
        tables.append(
            (
                f"7. Two workers on PostgreSQL: restart runs per minute ({runs} runs at once, "
                f"5 of 100 hosts each, median of {rounds})",
                [
                    {"workers": w, "runs per minute": r, "vs one worker": r / rates[1]}
                    for w, r in rates.items()
                ],
            )
        )
        gaps = lock_hand_over(config, admin, 3 if rounds > 1 else 1)
        tables.append(
            (
                "8. Host lock hand-over on PostgreSQL: release to the waiting run's acquisition",
                [
                    {
                        "hand-overs": len(gaps),
                        "median s": statistics.median(gaps),
                        "max s": max(gaps),
                        "bound": "the server's slot wait: "
                        "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS=2",
                    }
                ],
            )
        )
        admin.reset(10)
        time.sleep(3)
        alert_trigger(config, enabled=True)
        names = [h["hostname"] for h in admin.hosts()][:alerts]
        timings: list[dict[str, float]] = []
        for name in names:
            timings.append(alert_to_fix(config, admin, name))
            admin.overload(name, None)
        tables.append(
            (
                f"9. Alert to verified fix, {len(timings)} overloads (1 s scrape, "
                f"`for: {ALERT_FOR_SECONDS}s`)",
                [
                    {
                        "step": step,
                        "median s": statistics.median(t[step] for t in timings),
                        "min s": min(t[step] for t in timings),
                        "max s": max(t[step] for t in timings),
                    }
                    for step in timings[0]
                ],
            )
        )
    finally:
        down(config)
        shutil.rmtree(postgres_dir(config), ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per throughput round (<=20)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per worker count")
    parser.add_argument("--alerts", type=int, default=5, help="overloads timed end to end")
    args = parser.parse_args()
    for title, rows in bench_scale(args.runs, args.rounds, args.alerts):
        show(title, rows)


if __name__ == "__main__":
    main()
