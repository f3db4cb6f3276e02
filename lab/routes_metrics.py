"""The platform's `/metrics`: each lab host's simulated load, service, CPUs and disk, in the
Prometheus text format (what the lab's Prometheus scrapes; not in the OpenAPI document)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from opsflow.lab.hosts import DISK_SIZE_BYTES, current_load, load_settles_at
from opsflow.lab.jobs import JobRunner
from opsflow.lab.store import LabStore

BASE_DISK = 3 * 1024**3  # what the OS takes on every lab host: 30 % used when calm
LAB_EPOCH = 1_700_000_000.0  # the lab hosts' simulated boot time
IDLE = "\x00"  # where a rendered page takes the CPUs' idle counter, the one figure time moves


def metrics_router(store: LabStore, runner: JobRunner) -> APIRouter:
    """`/metrics` over `store`, with the restarts `runner` noted counted first."""
    router = APIRouter()
    page = MetricsPage(store)

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        runner.sync_noted_restarts()
        return PlainTextResponse(page.text(), media_type="text/plain; version=0.0.4")

    return router


class MetricsPage:
    """`/metrics`' text, rendered again only when the store changed or a restarted host's load
    is still falling; otherwise the last page with the idle counters moved on. The lab plays
    every host's exporter in one process: at 100,000 hosts a render took about a second of the
    platform's CPU every scrape (a real fleet's exporters run on its own hosts).

    Example:
        >>> MetricsPage(LabStore("/tmp/lab/platform.db")).text()            # doctest: +SKIP
        '# HELP node_load1 1m load average (simulated by the opsflow lab).\\n...'
    """

    def __init__(self, store: LabStore) -> None:
        self.store = store
        self._changes = -1  # the store's count of writes when the page was rendered
        self._rendered_at = 0.0
        self._settled_at = 0.0  # from when no load on the page moves with time alone
        self._page = ""
        self._lock = threading.Lock()  # scrapes that overlap (one timed out) render one at a time

    def text(self) -> str:
        with self._lock:
            now = time.time()
            changes = self.store.changes  # read first: a write after it renders again next time
            if changes != self._changes or self._rendered_at < self._settled_at:
                states = self.store.host_states()
                self._page = render_page(states, now)
                self._settled_at = max((load_settles_at(s) for s in states), default=0.0)
                self._changes, self._rendered_at = changes, now
            page = self._page
        return page.replace(IDLE, str(round(now - LAB_EPOCH, 1)))


def render_page(states: Iterable[sqlite3.Row], now: float) -> str:
    """Prometheus text format for every host (load, service, CPUs, root filesystem) at `now`,
    with `IDLE` where each CPU's idle counter goes."""
    families: dict[str, tuple[str, list[str]]] = {
        "node_load1": ("1m load average (simulated by the opsflow lab).", []),
        "lab_service_up": ("Whether the host's service is active.", []),
        "node_cpu_seconds_total": ("Seconds the CPUs spent idle (simulated).", []),
        "node_filesystem_size_bytes": ("Filesystem size (simulated).", []),
        "node_filesystem_avail_bytes": ("Filesystem space available (simulated).", []),
    }
    for s in states:
        address = f"[{s['ip']}]" if ":" in s["ip"] else s["ip"]  # IPv6 as Prometheus writes it
        labels = f'instance="{address}:9100",hostname="{s["hostname"]}"'
        disk = f'{labels},mountpoint="/"'
        avail = max(0.0, DISK_SIZE_BYTES - BASE_DISK - s["disk_used"])
        load, fault = current_load(s, now), s["metrics_fault"]
        if fault == "nan":
            families["node_load1"][1].append(f"node_load1{{{labels}}} NaN")
        elif fault == "stale":  # a relay replaying an old sample with its own timestamp
            then, frozen = int(s["metrics_frozen_at"] * 1000), s["metrics_frozen_load"]
            families["node_load1"][1].append(
                f'node_load1{{{labels},exporter="replay"}} {frozen} {then}'
            )
        elif fault != "absent":
            families["node_load1"][1].append(f"node_load1{{{labels}}} {load}")
        families["lab_service_up"][1].append(
            f'lab_service_up{{{labels},service="nginx"}} {s["service_up"]}'
        )
        families["node_cpu_seconds_total"][1].extend(
            f'node_cpu_seconds_total{{{labels},cpu="{cpu}",mode="idle"}} {IDLE}'
            for cpu in range(s["cpus"])
        )
        families["node_filesystem_size_bytes"][1].append(
            f"node_filesystem_size_bytes{{{disk}}} {DISK_SIZE_BYTES}"
        )
        families["node_filesystem_avail_bytes"][1].append(
            f"node_filesystem_avail_bytes{{{disk}}} {avail}"
        )
    lines = []
    for name, (text, samples) in families.items():
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"
