"""Start-up of the command line and of an ad hoc run with nothing to do.

    .venv/bin/python -m bench --only startup      (part of the full benchmark run)

Every command runs in a fresh process, as an operator types it. Baselines measured in the
same run: the bare interpreter (`python -c pass`) for the command line's own start-up, and
Prefect's own minimum for an ad hoc run: one empty flow on Prefect's temporary server.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from opsflow.flows.services.local_server import HEARTBEAT_SECONDS
from opsflow.lab.stack import LabAdmin, LabConfig

OPSFLOW = [sys.executable, "-m", "opsflow.flows"]
NOTHING_TO_DO = [
    "run",
    "restart-overloaded-hosts",
    "--platform-block",
    "lab",
    "--prometheus-block",
    "lab",
    "--threshold",
    "1000",
]
EMPTY_FLOW = "from prefect import flow\nflow(lambda: None)()"


def timed(
    argv: list[str], env: dict[str, str], repeat: int, before: list[str] | None = None
) -> float:
    """Median wall time of `argv` over `repeat` runs, after one unmeasured warm-up; `before`
    runs (untimed) ahead of each one."""
    times = []
    for attempt in range(repeat + 1):
        if before:
            subprocess.run(before, env=env, capture_output=True, timeout=120, check=True)
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{argv} failed: {done.stdout[-500:]}{done.stderr[-500:]}")
        if attempt:
            times.append(elapsed)
    return statistics.median(times)


def timed_refusal(argv: list[str], env: dict[str, str], repeat: int) -> float:
    """Median wall time of a command that must be refused (exit 2), after a warm-up."""
    times = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 2:
            raise RuntimeError(f"{argv} was not refused: {done.stdout[-500:]}{done.stderr[-500:]}")
        if attempt:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_startup(
    config: LabConfig, admin: LabAdmin, repeat: int, quick: bool = False
) -> list[dict[str, Any]]:
    """The rows of the start-up table (`quick`: without the ad hoc runs)."""
    admin.reset(10)
    with tempfile.TemporaryDirectory() as home:
        local = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        local |= {"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        python = timed([sys.executable, "-c", "pass"], local, repeat)
        rows = [
            _row("opsflow --help", timed([*OPSFLOW, "--help"], local, repeat), python, 0.5),
            _row("opsflow runbooks", timed([*OPSFLOW, "runbooks"], local, repeat), python, 0.5),
            _row(
                "opsflow run restart-overloaded-hosts --help",
                timed([*OPSFLOW, "run", "restart-overloaded-hosts", "--help"], local, repeat),
                python,
                0.5,
            ),
            _row(
                "opsflow run restart-overloaded-hosts --batch-size 0 (refused)",
                timed_refusal(
                    [*OPSFLOW, "run", "restart-overloaded-hosts", "--batch-size", "0"],
                    local,
                    repeat,
                ),
                python,
                0.5,
            ),
        ]
        rows += local_server_rows(config, local, repeat)
        with _prefect_server(local) as api:
            served = {**local, "PREFECT_API_URL": api}
            subprocess.run(
                [*OPSFLOW[:2], "opsflow.lab", "up", "--dir", str(config.dir)],
                env=served,
                check=True,
                capture_output=True,
                timeout=300,
            )
            rows += scheduled_nothing_to_do(served, repeat if quick else max(repeat, 3))
    return rows


def local_server_rows(
    config: LabConfig, local: dict[str, str], repeat: int
) -> list[dict[str, Any]]:
    """An ad hoc run with nothing to do and no PREFECT_API_URL: on opsflow's local server when
    it runs (warm), and as the first run of the day, which starts it (cold); against Prefect's
    own empty flow on the same server, and on Prefect's temporary server. Prefect's flow sends
    heartbeats as opsflow's ad hoc run does (the crash detection of the local server needs them,
    and Prefect sends them by default). At its end Prefect's flow waits for the heartbeat thread
    (up to a second: about 0.9 s after a sub-second flow); a runbook's run does not
    (flows/runbooks/runbook_flow.py), which is part of the difference."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        env = {**local, "OPSFLOW_SERVER_PORT": str(sock.getsockname()[1])}
    beating = {**env, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
    stop = [*OPSFLOW, "server", "stop"]
    try:
        subprocess.run(  # the lab's blocks in this Prefect home (as `opsflow lab up` does)
            [*OPSFLOW[:2], "opsflow.lab", "up", "--dir", str(config.dir)],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        warm = timed([*OPSFLOW, *NOTHING_TO_DO], env, repeat)
        server = json.loads((Path(env["PREFECT_HOME"]) / "opsflow-server.json").read_text())
        on_it = {**beating, "PREFECT_API_URL": f"http://127.0.0.1:{server['port']}/api"}
        prefect_warm = timed([sys.executable, "-c", EMPTY_FLOW], on_it, repeat)
        cold = timed([*OPSFLOW, *NOTHING_TO_DO], env, repeat, before=stop)
        subprocess.run(stop, env=env, capture_output=True, timeout=120, check=True)
        prefect_cold = timed([sys.executable, "-c", EMPTY_FLOW], beating, repeat)
    finally:
        subprocess.run(stop, env=env, capture_output=True, timeout=120)
    return [
        _row(
            "ad hoc run, nothing to do (opsflow's local server running)",
            warm,
            prefect_warm,
            None,
            baseline="Prefect: one empty flow, same server",
            ratio_target=1.15,
        ),
        _row(
            "ad hoc run, nothing to do, first of the day (starts the local server)",
            cold,
            prefect_cold,
            None,
            baseline="Prefect: one empty flow, its temporary server",
            ratio_target=1.1,
        ),
    ]


SCHEDULED = """
import json, statistics, sys, time
from prefect import flow
from opsflow.flows.runbooks.restart_overloaded_hosts import restart_overloaded_hosts
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy

empty = flow(name="empty")(lambda: None)
policy = RestartPolicy(platform="lab", prometheus="lab", threshold=1000)
times = {"empty": [], "opsflow": []}
for attempt in range(int(sys.argv[1]) + 1):
    for name, run in (("empty", empty), ("opsflow", lambda: restart_overloaded_hosts(policy))):
        # Scheduled runs are apart in time: the server is given the second it takes to record
        # the last run's events, or the next one meets SQLite's busy 503 (Prefect's client
        # then sleeps 2 s), whichever run that is.
        time.sleep(1)
        started = time.perf_counter()
        run()
        if attempt:
            times[name].append(time.perf_counter() - started)
print(json.dumps({name: statistics.median(values) for name, values in times.items()}))
"""


def scheduled_nothing_to_do(env: dict[str, str], repeat: int) -> list[dict[str, Any]]:
    """A scheduled run with nothing to do, as a worker's flow-run process runs it: the run
    itself in a process that has imported Prefect and opsflow, against the running server, next
    to Prefect's empty flow in the same process; and that process's start (what the worker
    adds before the run: the interpreter, Prefect's and opsflow's imports)."""
    done = subprocess.run(
        [sys.executable, "-c", SCHEDULED, str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    imports = "import prefect.flow_engine, opsflow.flows.runbooks.restart_overloaded_hosts"
    with_opsflow = timed([sys.executable, "-c", imports], env, repeat)
    prefect_only = timed([sys.executable, "-c", "import prefect.flow_engine"], env, repeat)
    return [
        _row(
            "scheduled run, nothing to do: the run (running server)",
            measured["opsflow"],
            measured["empty"],
            1.5,
            baseline="Prefect: one empty flow run, same process",
        ),
        _row(
            "scheduled run: its process start (interpreter, Prefect, opsflow imports)",
            with_opsflow,
            prefect_only,
            None,
            baseline="Prefect's own imports",
        ),
        _row(
            "  of which opsflow's own imports (the difference)",
            with_opsflow - prefect_only,
            prefect_only,
            0.3,
            baseline="Prefect's own imports",
        ),
    ]


def _row(
    what: str,
    seconds: float,
    reference: float,
    target: float | None,
    baseline: str = "",
    ratio_target: float | None = None,
) -> dict[str, Any]:
    """A table row; `target` in seconds, or `ratio_target` against the baseline."""
    ratio = seconds / reference
    if ratio_target is not None:
        wanted, met = f"<= {ratio_target:g}x", ratio <= ratio_target
    elif target is not None:
        wanted, met = f"< {target:g} s", seconds < target
    else:
        wanted, met = "-", None
    return {
        "command": what,
        "median s": round(seconds, 2),
        "baseline": baseline or "python -c pass",
        "baseline s": round(reference, 2),
        "ratio": round(ratio, 2),
        "target": wanted,
        "met": "-" if met is None else "yes" if met else "MISSED",
    }


class _prefect_server:
    """`prefect server start` on a free loopback port, for the duration of a `with`."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __enter__(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
            + ["--port", str(port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        api = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{api}/health", timeout=2).ok:
                    return api
            except requests.RequestException:
                time.sleep(0.5)
        raise RuntimeError("prefect server start did not answer within 120 s")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)


if __name__ == "__main__":
    sys.exit(
        f"run it as part of the benchmarks: {Path(sys.executable).name} -m bench --only startup"
    )
