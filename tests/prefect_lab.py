"""The lab with its Prefect topology (`--prefect postgres --workers 2`, or `ha`), for the
modules that need a real server with workers: one topology per test session, shared by those
modules in turn, its alert trigger paused except while a module wants it; and helpers to read
that server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from opsflow.flows.services.deployments import set_alert_triggers
from opsflow.lab.prefect_stack import PROCESSES, postgres_dir
from opsflow.lab.stack import down, up
from opsflow.tasks.host_locks import lock_name
from tests.conftest import Lab, wait_until

RESTART = "restart-overloaded-hosts"
# A topology's processes that another kind replaces (`PROCESSES` less PostgreSQL).
SERVERS = tuple(name for name in PROCESSES if name != "postgres")
FAST = {"batch_size": 1, "poll_seconds": 0.5, "verify_window_seconds": 30}


class Topologies:
    """The session's one Prefect topology (`--prefect <kind> --workers 2`): built when a module
    first needs it, kept for the next module that needs the same kind (the run order puts them
    together), replaced when another kind is needed (on the same PostgreSQL database, as an
    operator moving the lab to `--prefect ha` does), gone at the end of the session."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.kind = "none"

    def ensure(self, kind: str) -> Lab:
        """The lab with this topology up; calm hosts, no jobs, the alert trigger paused."""
        if self.kind != kind:
            down(self.lab.config, only=SERVERS)  # PostgreSQL and its database stay
            self.lab.config.prefect = "none"
            self.lab.reset(10)
            self.lab.config.prefect, self.lab.config.workers = kind, 2
            self.kind = kind
            up(self.lab.config, save_blocks=False)
        alert_trigger(self.lab, enabled=False)
        self.lab.reset(10)
        return self.lab

    def close(self) -> None:
        if self.kind == "none":
            return
        down(self.lab.config, only=PROCESSES)
        shutil.rmtree(postgres_dir(self.lab.config), ignore_errors=True)
        self.lab.config.prefect = "none"
        self.lab.config.save()
        self.kind = "none"


@pytest.fixture(scope="module")
def prefect_lab(topologies: Topologies) -> Iterator[Lab]:
    """One Prefect server on PostgreSQL, two workers, the receiver; the alert trigger paused
    (a module that wants alert-driven runs resumes it), and paused again after the module, as
    it would act on other tests' overloads."""
    lab = topologies.ensure("postgres")
    yield lab
    if topologies.kind == "postgres":
        alert_trigger(lab, enabled=False)


@pytest.fixture(scope="module")
def ha_lab(topologies: Topologies) -> Iterator[Lab]:
    """Two API servers behind a balancer on PostgreSQL and Redis, two workers, the receiver;
    the alert trigger paused as with `prefect_lab`."""
    lab = topologies.ensure("ha")
    yield lab
    if topologies.kind == "ha":
        alert_trigger(lab, enabled=False)


@contextmanager
def lab_server(lab: Lab) -> Iterator[SyncPrefectClient]:
    """A client of the lab's own Prefect server (not the suite's)."""
    with temporary_settings({PREFECT_API_URL: lab.config.prefect_api_url}):
        with get_client(sync_client=True) as client:
            yield client


def restart_runs(lab: Lab) -> list[Any]:
    with lab_server(lab) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[RESTART]))
        )


def finished_runs(lab: Lab, known: set[Any], count: int, timeout: float = 120) -> list[Any]:
    """Wait for `count` restart runs not in `known` to reach a final state."""

    def done() -> list[Any] | None:
        new = [r for r in restart_runs(lab) if r.id not in known]
        final = [r for r in new if r.state and r.state.is_final()]
        return final if len(final) >= count else None

    return wait_until(done, timeout, f"{count} alert-triggered restart run(s) to finish")


def alert_trigger(lab: Lab, enabled: bool) -> None:
    """Pause or resume the restart deployment's alert trigger (a redeploy makes it anew)."""
    with temporary_settings({PREFECT_API_URL: lab.config.prefect_api_url}):
        set_alert_triggers(enabled)


def start_restart(lab: Lab, hostnames: list[str], **policy: Any) -> FlowRun:
    """A run of the restart deployment for these hosts, left to the workers."""
    with lab_server(lab) as client:
        defaults = client.read_deployment_by_name(f"{RESTART}/{RESTART}").parameters["policy"]
    with lab_server(lab):
        return run_deployment(
            f"{RESTART}/{RESTART}",
            parameters={
                "policy": {**defaults, **FAST, **policy, "selector": {"hostnames": hostnames}}
            },
            timeout=0,
        )


def host_ids(lab: Lab, hostnames: list[str]) -> list[str]:
    return [str(lab.admin.host(name)["id"]) for name in hostnames]


def held(lab: Lab, hostnames: list[str]) -> list[str]:
    """The hosts whose lock has a slot taken."""
    with lab_server(lab) as client:
        limits = {g.name: g.active_slots for g in client.read_global_concurrency_limits(limit=200)}
    return [
        name
        for name, host_id in zip(hostnames, host_ids(lab, hostnames), strict=True)
        if limits.get(lock_name(host_id), 0)
    ]
