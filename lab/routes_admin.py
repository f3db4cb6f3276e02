"""The lab's own admin endpoints under `/lab/...` (reset, overload, fail or hang a restart,
metrics faults, fill a disk, injected faults, host state): for the lab's command line and
tests, not in the OpenAPI document."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from opsflow.lab.faults import FaultInjector, FaultRule
from opsflow.lab.hosts import (
    base_load_for,
    current_load,
    disk_used,
    fill_disk,
    set_host_flag,
)
from opsflow.lab.jobs import JobRunner
from opsflow.lab.routes_common import fail
from opsflow.lab.store import LabStore


class ResetIn(BaseModel):
    hosts: int = Field(default=10, ge=0, le=200_000)


class OverloadIn(BaseModel):
    load: float | None = Field(default=8.0, ge=0, description="None clears the overload.")


class FillDiskIn(BaseModel):
    gigabytes: float = Field(default=8.0, gt=0, le=10)


STALE_SAMPLE_AGE = 90.0


class MetricsFaultIn(BaseModel):
    fault: Literal["nan", "stale", "absent"] | None = Field(
        description="nan: the load is NaN; stale: a relay replays the load the host has now "
        f"as a sample taken {STALE_SAMPLE_AGE:g} s ago (a new series, exporter=replay: "
        "Prometheus serves it for 5 minutes and never marks it stale); absent: no load series; "
        "null: normal again."
    )


class FailRestartIn(BaseModel):
    fail: bool = True


class HangRestartIn(BaseModel):
    hang: bool = True


def admin_router(
    store: LabStore, runner: JobRunner, root: Path, faults: FaultInjector, auth: list[Any]
) -> APIRouter:
    """The `/lab/...` routes over `store`, `runner`, the lab directory `root` and `faults`."""
    router = APIRouter()

    @router.post("/lab/reset", dependencies=auth, include_in_schema=False)
    def reset(body: ResetIn) -> dict[str, Any]:
        runner.cancel_all()
        store.delete_all_hosts()
        shutil.rmtree(root / "hosts", ignore_errors=True)
        specs = lab_host_specs(body.hosts)
        store.create_hosts(specs, [base_load_for(s["hostname"]) for s in specs])
        return {"hosts": body.hosts}

    def by_name(hostname: str) -> dict[str, Any]:
        host = store.get_host_by_name(hostname)
        if host is None:
            raise fail(404, "host_not_found", f"no lab host named {hostname!r}")
        return host

    @router.post("/lab/hosts/{hostname}/overload", dependencies=auth, include_in_schema=False)
    def overload(hostname: str, body: OverloadIn) -> dict[str, Any]:
        host = by_name(hostname)
        store.set_state(
            host["id"],
            overload=body.load,
            overloaded_at=time.time() if body.load is not None else None,
        )
        return lab_state(hostname)

    @router.post("/lab/hosts/{hostname}/fail-restart", dependencies=auth, include_in_schema=False)
    def fail_restart(hostname: str, body: FailRestartIn) -> dict[str, Any]:
        host = by_name(hostname)
        set_host_flag(root, hostname, "fail-restart", body.fail)
        store.set_state(host["id"], fail_restart=int(body.fail))
        return lab_state(hostname)

    @router.post("/lab/hosts/{hostname}/metrics", dependencies=auth, include_in_schema=False)
    def metrics_fault(hostname: str, body: MetricsFaultIn) -> dict[str, Any]:
        host = by_name(hostname)
        state = store.host_state(host["id"])
        store.set_state(
            host["id"],
            metrics_fault=body.fault,
            metrics_frozen_at=time.time() - STALE_SAMPLE_AGE,
            metrics_frozen_load=current_load(state),  # type: ignore[arg-type]
        )
        return lab_state(hostname)

    @router.post("/lab/hosts/{hostname}/hang-restart", dependencies=auth, include_in_schema=False)
    def hang_restart(hostname: str, body: HangRestartIn) -> dict[str, Any]:
        by_name(hostname)
        set_host_flag(root, hostname, "hang-restart", body.hang)
        return lab_state(hostname)

    @router.put("/lab/faults", dependencies=auth, include_in_schema=False)
    def set_faults(rules: list[FaultRule]) -> list[FaultRule]:
        faults.set(rules)
        return faults.rules

    @router.get("/lab/faults", dependencies=auth, include_in_schema=False)
    def get_faults() -> list[FaultRule]:
        return faults.rules

    @router.post("/lab/hosts/{hostname}/fill-disk", dependencies=auth, include_in_schema=False)
    def fill(hostname: str, body: FillDiskIn) -> dict[str, Any]:
        host = by_name(hostname)
        fill_disk(root, hostname, body.gigabytes)
        store.set_state(host["id"], disk_used=disk_used(root, hostname))
        return lab_state(hostname)

    @router.get("/lab/hosts/{hostname}", dependencies=auth, include_in_schema=False)
    def lab_state(hostname: str) -> dict[str, Any]:
        state = store.host_state(by_name(hostname)["id"])
        return {**dict(state), "load": current_load(state)}  # type: ignore[arg-type]

    @router.get("/lab/hosts", dependencies=auth, include_in_schema=False)
    def lab_states() -> list[dict[str, Any]]:
        runner.sync_noted_restarts()
        now = time.time()
        return [{**dict(s), "load": current_load(s, now)} for s in store.host_states()]

    return router


def lab_host_specs(count: int) -> list[dict[str, Any]]:
    """`count` lab hosts on loopback addresses (127.10.x.y, then 127.11.x.y...), tagged by role."""
    specs = []
    for n in range(1, count + 1):
        block, rest = divmod(n, 250 * 250)
        high, low = divmod(rest, 250)
        role = "web" if n % 2 else "db"
        specs.append(
            {
                "hostname": f"lab-{role}-{n:02d}",
                "ip": f"127.{10 + block}.{high}.{low + 1}",
                "os": "Debian 12",
                "owner": "ops-lab",
                "tags": ["lab", role],
            }
        )
    return specs
