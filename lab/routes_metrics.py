"""The platform's `/metrics`: each lab host's simulated load, service, CPUs and disk, in the
Prometheus text format (what the lab's Prometheus scrapes; not in the OpenAPI document)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from opsflow.lab.hosts import DISK_SIZE_BYTES, current_load
from opsflow.lab.jobs import JobRunner
from opsflow.lab.store import LabStore

BASE_DISK = 3 * 1024**3  # what the OS takes on every lab host: 30 % used when calm
LAB_EPOCH = 1_700_000_000.0  # the lab hosts' simulated boot time


def metrics_router(store: LabStore, runner: JobRunner) -> APIRouter:
    """`/metrics` over `store`, with the restarts `runner` noted counted first."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        runner.sync_noted_restarts()
        return PlainTextResponse(render_metrics(store), media_type="text/plain; version=0.0.4")

    return router


def render_metrics(store: LabStore) -> str:
    """Prometheus text format for every host: load, service, CPUs and the root filesystem."""
    now = time.time()
    families: dict[str, tuple[str, list[str]]] = {
        "node_load1": ("1m load average (simulated by the opsflow lab).", []),
        "lab_service_up": ("Whether the host's service is active.", []),
        "node_cpu_seconds_total": ("Seconds the CPUs spent idle (simulated).", []),
        "node_filesystem_size_bytes": ("Filesystem size (simulated).", []),
        "node_filesystem_avail_bytes": ("Filesystem space available (simulated).", []),
    }
    for s in store.host_states():
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
        idle = round(now - LAB_EPOCH, 1)
        families["node_cpu_seconds_total"][1].extend(
            f'node_cpu_seconds_total{{{labels},cpu="{cpu}",mode="idle"}} {idle}'
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
