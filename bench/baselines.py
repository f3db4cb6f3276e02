"""What opsflow is measured against: the seed's style and a careful hand-written script.

Both do the main runbook's calls (query load, list hosts, restart the overloaded ones, check
health, wait for the load to fall) straight over `requests`, with no Prefect, no Vault, no
audit log and no report: the least work that gives the same outcome.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests


@dataclass
class Target:
    platform: str
    token: str
    ca: str
    prometheus: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}


# client throughput ------------------------------------------------------------------------


def seed_reads(target: Target, host_ids: list[int]) -> None:
    """The seed's `OpsAPI.request`: `requests.request` per call, a new connection each time."""
    for host_id in host_ids:
        response = requests.request(
            "GET",
            f"{target.platform}/api/v1/hosts/{host_id}",
            headers=target.headers,
            verify=target.ca,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"read failed: {response.status_code}")
        response.json()


# the runbook, seed style: one host at a time, one request at a time ------------------------


def _load(get, target: Target, query: str) -> dict[str, float]:
    answer = get(f"{target.prometheus}/api/v1/query", params={"query": query}).json()
    return {
        r["metric"]["instance"].rsplit(":", 1)[0]: float(r["value"][1])
        for r in answer["data"]["result"]
    }


def _wait_job(get, target: Target, job_id: str, poll: float) -> dict:
    while True:
        job = get(f"{target.platform}/api/v1/job/{job_id}", headers=target.headers).json()
        if job["status"] not in ("pending", "running"):
            return job
        time.sleep(poll)


def seed_runbook(
    target: Target, threshold: float, recovery: float, poll: float, budget_seconds: float
) -> tuple[int, float]:
    """Sequential, as the seed writes it; returns (hosts done, seconds) within the budget."""

    def get(url: str, **kw):
        return requests.request("GET", url, verify=target.ca, timeout=30, **kw)

    def post(url: str, body: dict):
        return requests.request(
            "POST", url, headers=target.headers, json=body, verify=target.ca, timeout=30
        )

    started = time.monotonic()
    loads = _load(get, target, "node_load1")
    hosts, page = [], 1
    while True:
        body = get(
            f"{target.platform}/api/v1/hosts",
            headers=target.headers,
            params={"page": page, "page_size": 100},
        ).json()
        hosts += body["data"]
        if len(hosts) >= body["total"] or not body["data"]:
            break
        page += 1
    over = sorted(
        (h for h in hosts if loads.get(h["ip"], 0) > threshold), key=lambda h: -loads[h["ip"]]
    )
    done = 0
    for host in over:
        if time.monotonic() - started > budget_seconds:
            break
        for command in ("systemctl restart nginx", "systemctl is-active nginx"):
            job_id = post(
                f"{target.platform}/api/v1/job/execute",
                {"hosts": [host["id"]], "command": command, "timeout": 60},
            ).json()["job_id"]
            _wait_job(get, target, job_id, poll)
        while (
            _load(get, target, f'node_load1{{instance="{host["ip"]}:9100"}}').get(host["ip"], 99)
            >= recovery
        ):
            time.sleep(poll)
        done += 1
    return done, time.monotonic() - started


# the runbook, hand-written with a session and threads ----------------------------------------


def threaded_runbook(
    target: Target,
    threshold: float,
    recovery: float,
    batch_size: int,
    poll: float,
    workers: int = 8,
) -> tuple[int, float]:
    """Same batches as opsflow: pooled session, pages fetched in parallel, jobs per batch."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the lab's CA
    session.verify = target.ca
    session.headers.update(target.headers)
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=workers)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    get = session.get
    started = time.monotonic()
    loads = _load(get, target, "node_load1")
    first = get(f"{target.platform}/api/v1/hosts", params={"page": 1, "page_size": 500}).json()
    pages = range(2, (first["total"] + 499) // 500 + 1)
    with ThreadPoolExecutor(workers) as pool:
        rest = pool.map(
            lambda p: get(
                f"{target.platform}/api/v1/hosts", params={"page": p, "page_size": 500}
            ).json()["data"],
            pages,
        )
        hosts = first["data"] + [h for page in rest for h in page]
    over = sorted(
        (h for h in hosts if loads.get(h["ip"], 0) > threshold), key=lambda h: -loads[h["ip"]]
    )
    for start in range(0, len(over), batch_size):
        batch = over[start : start + batch_size]
        for command in ("systemctl restart nginx", "systemctl is-active nginx"):
            job_id = session.post(
                f"{target.platform}/api/v1/job/execute",
                json={"hosts": [h["id"] for h in batch], "command": command, "timeout": 60},
            ).json()["job_id"]
            _wait_job(get, target, job_id, poll)
        while True:
            now = _load(get, target, "node_load1")
            if all(now.get(h["ip"], 99) < recovery for h in batch):
                break
            time.sleep(poll)
    return len(over), time.monotonic() - started
