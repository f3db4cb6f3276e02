"""The restart runbook over SaltStack against a hand-written salt-api script, and Salt's floor.

    .venv/bin/python -m bench --only salt      (part of the full benchmark run)

The script makes the same salt-api calls a careful engineer would (login, `local_async`
`cmd.run_all` per batch, poll `/jobs/<jid>` for every minion's return, the health check, then
Prometheus until the load falls) and nothing else: no Prefect, no Vault, no locks, no
cooldown, no report. Salt's floor is one `cmd.run_all true` from submission to the last return.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import requests

from opsflow.lab.salt import SALT_USER, clear_job_cache
from opsflow.lab.stack import LabAdmin, LabConfig, lab_secrets, up

POLL = 0.2  # the same as the runbook's poll_seconds below


class SaltScript:
    """salt-api by hand."""

    def __init__(self, api: str, password: str) -> None:
        self.api = api
        self.session = requests.Session()
        self.session.trust_env = False
        answer = self.session.post(
            f"{api}/login",
            json={"username": SALT_USER, "password": password, "eauth": "file"},
            timeout=30,
        )
        answer.raise_for_status()
        self.session.headers["X-Auth-Token"] = answer.json()["return"][0]["token"]

    def run(self, minions: list[str], command: str) -> dict[str, int]:
        """`cmd.run_all` on the minions; each minion's retcode once all returned."""
        answer = self.session.post(
            f"{self.api}/",
            json=[
                {
                    "client": "local_async",
                    "tgt": minions,
                    "tgt_type": "list",
                    "fun": "cmd.run_all",
                    "arg": [command],
                }
            ],
            timeout=30,
        ).json()
        jid = answer["return"][0]["jid"]
        while True:
            info = self.session.get(f"{self.api}/jobs/{jid}", timeout=30).json()["info"][0]
            results = info.get("Result") or {}
            if set(results) >= set(minions):
                return {m: r["retcode"] for m, r in results.items()}
            time.sleep(POLL)


def hand_written_restart(
    script: SaltScript, prometheus: str, overloaded: dict[str, str], batch: int
) -> None:
    """Restart, check, wait for the load to fall: batch by batch, as the runbook does."""
    names = sorted(overloaded)
    for start in range(0, len(names), batch):
        minions = names[start : start + batch]
        assert all(code == 0 for code in script.run(minions, "systemctl restart nginx").values())
        assert all(code == 0 for code in script.run(minions, "systemctl is-active nginx").values())
        while True:
            answer = requests.get(
                f"{prometheus}/api/v1/query", params={"query": "node_load1"}, timeout=30
            ).json()
            loads = {
                r["metric"]["instance"].rsplit(":", 1)[0]: float(r["value"][1])
                for r in answer["data"]["result"]
            }
            if all(loads.get(overloaded[m], 99) < 2 for m in minions):
                break
            time.sleep(POLL)


def salt_floor(script: SaltScript, minions: list[str], repeat: int) -> float:
    """Median seconds from a `cmd.run_all true` submission to the last minion's return."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        script.run(minions, "true")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_salt(
    config: LabConfig, admin: LabAdmin, sizes: list[int], repeat: int
) -> list[dict[str, Any]]:
    """The rows: per size, the runbook and the script (medians), their ratio, and the floor."""
    from bench.__main__ import prepare
    from opsflow.flows.runbooks.restart_overloaded_hosts import (
        RestartPolicy,
        restart_overloaded_hosts,
    )

    rows = []
    password = lab_secrets(config)["salt_password"]
    for size in sizes:
        overloaded_count = max(2, size // 4)
        admin.reset(size)
        config.backend = "salt"
        up(config)  # a minion for each of the `size` hosts
        script = SaltScript(config.salt_api_url, password)
        minions = [h["hostname"] for h in admin.hosts()]
        floor = salt_floor(script, minions, max(3, repeat))
        policy = RestartPolicy(
            platform="salt-api/lab",
            prometheus="lab",
            threshold=4,
            recovery_threshold=2,
            batch_size=5,
            max_hosts=size,
            poll_seconds=POLL,
            verify_window_seconds=60,
            job_timeout_seconds=60,
            cooldown_minutes=0,
        )
        measured: dict[str, list[float]] = {"opsflow": [], "hand-written salt-api script": []}
        for attempt in range(repeat + 1):  # the first round warms up and is not counted
            for variant in measured:
                clear_job_cache(config.dir)
                chosen = prepare(config, admin, size, overloaded_count)
                ips = {h["hostname"]: h["ip"] for h in admin.hosts()}
                started = time.perf_counter()
                if variant == "opsflow":
                    state = restart_overloaded_hosts(policy, return_state=True)
                    assert state.is_completed(), state.message
                else:
                    hand_written_restart(
                        script, config.prometheus_url, {n: ips[n] for n in chosen}, 5
                    )
                if attempt:
                    measured[variant].append(time.perf_counter() - started)
        base = statistics.median(measured["hand-written salt-api script"])
        for variant, times in measured.items():
            median = statistics.median(times)
            rows.append(
                {
                    "minions": size,
                    "overloaded": overloaded_count,
                    "variant": variant,
                    "median s": round(median, 2),
                    "ratio": round(median / base, 2),
                    "target": "<= 1.3x" if variant == "opsflow" else "-",
                    "met": ("yes" if median / base <= 1.3 else "MISSED")
                    if variant == "opsflow"
                    else "-",
                }
            )
        rows.append(
            {
                "minions": size,
                "overloaded": "-",
                "variant": "Salt's floor: submission to last return (cmd.run_all true)",
                "median s": round(floor, 2),
                "ratio": "-",
                "target": "-",
                "met": "-",
            }
        )
    return rows
