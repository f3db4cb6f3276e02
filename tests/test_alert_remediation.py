"""From alert to verified fix with no human step, everything real: the lab's Prometheus fires
HostOverloaded, Alertmanager posts to `opsflow alerts serve`, the receiver emits
`opsflow.alerts.firing`, the restart deployment's trigger starts a run in a `prefect server
start` on PostgreSQL, one of two process workers runs it, the host is restarted and verified,
and the alert resolves."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

from opsflow.lab.prefect_stack import PROCESSES, WORK_POOL, postgres_dir
from opsflow.lab.stack import down, up
from tests.conftest import Lab, wait_until

RESTART = "restart-overloaded-hosts"


@pytest.fixture(scope="module")
def prefect_lab(lab: Lab) -> Iterator[Lab]:
    """The lab with `--prefect postgres --workers 2`, for this module only (its alert trigger
    would act on other tests' overloads)."""
    lab.reset(10)
    lab.config.prefect, lab.config.workers = "postgres", 2
    try:
        up(lab.config, save_blocks=False)
        yield lab
    finally:
        down(lab.config, only=PROCESSES)
        shutil.rmtree(postgres_dir(lab.config), ignore_errors=True)
        lab.config.prefect = "none"
        lab.config.save()


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


def alert_events(lab: Lab, name: str, hostname: str) -> list[Any]:
    with lab_server(lab) as client:
        return client.read_events(
            EventFilter(
                event=EventNameFilter(name=[name]),
                resource=EventResourceFilter(id=[f"opsflow.host.{hostname}"]),
            ),
            limit=50,
        ).events


def test_an_alert_restarts_exactly_its_host_once_and_resolves(prefect_lab: Lab) -> None:
    known = {r.id for r in restart_runs(prefect_lab)}
    started = time.time()
    prefect_lab.overload(8.0, "lab-web-03")

    [run] = finished_runs(prefect_lab, known, 1)
    fixed = run.end_time.timestamp() - started
    print(f"overload to verified fix: {fixed:.1f}s")  # the bench reports the median

    assert run.state.is_completed(), run.state.message
    assert "1 host restarted and verified" in run.state.message
    assert run.parameters["policy"]["selector"] == {"hostnames": ["lab-web-03"]}
    assert prefect_lab.admin.restarts() == {"lab-web-03": 1}
    # Both lab workers are up; one of them ran it.
    with lab_server(prefect_lab) as client:
        workers = client.read_workers_for_work_pool(WORK_POOL)
    assert len([w for w in workers if w.status.value == "ONLINE"]) == 2

    # Restarted, the host's load falls and Alertmanager says so: the receiver emits it.
    wait_until(
        lambda: alert_events(prefect_lab, "opsflow.alert.resolved", "lab-web-03"),
        60,
        "the resolved alert to come back as an event",
    )


def test_a_second_alert_within_the_cooldown_is_an_event_but_no_restart(
    prefect_lab: Lab,
) -> None:
    prefect_lab.admin.overload("lab-web-03", None)
    wait_until(
        lambda: alert_events(prefect_lab, "opsflow.alert.resolved", "lab-web-03"),
        60,
        "the earlier alert to resolve",
    )
    firing_before = len(alert_events(prefect_lab, "opsflow.alert.firing", "lab-web-03"))
    restarts_before = prefect_lab.admin.restarts().get("lab-web-03", 0)
    known = {r.id for r in restart_runs(prefect_lab)}

    prefect_lab.overload(8.0, "lab-web-03")
    [run] = finished_runs(prefect_lab, known, 1)

    assert len(alert_events(prefect_lab, "opsflow.alert.firing", "lab-web-03")) > firing_before
    assert run.parameters["policy"]["selector"] == {"hostnames": ["lab-web-03"]}
    assert prefect_lab.admin.restarts().get("lab-web-03", 0) == restarts_before
    assert "1 host within the cooldown" in run.state.message, run.state.message
    prefect_lab.admin.overload("lab-web-03", None)


def test_a_storm_of_alerts_is_one_run_for_exactly_the_alerting_hosts(prefect_lab: Lab) -> None:
    storm = ["lab-db-02", "lab-db-04", "lab-web-05"]
    known = {r.id for r in restart_runs(prefect_lab)}
    restarted_before = prefect_lab.admin.restarts()
    for hostname in storm:
        prefect_lab.admin.overload(hostname, 8.0)

    [run] = finished_runs(prefect_lab, known, 1)
    time.sleep(5)  # a second run would have been created by now
    runs = [r for r in restart_runs(prefect_lab) if r.id not in known]

    assert len(runs) == 1, [r.parameters for r in runs]
    assert sorted(run.parameters["policy"]["selector"]["hostnames"]) == sorted(storm)
    assert run.state.is_completed(), run.state.message
    restarted = {
        name: count - restarted_before.get(name, 0)
        for name, count in prefect_lab.admin.restarts().items()
        if count != restarted_before.get(name, 0)
    }
    assert restarted == dict.fromkeys(storm, 1)
    for hostname in storm:
        prefect_lab.admin.overload(hostname, None)


def test_a_fleet_wide_storm_is_stopped_by_the_blast_radius_cap(prefect_lab: Lab) -> None:
    prefect_lab.reset(10)
    fleet = [h["hostname"] for h in prefect_lab.admin.hosts()][:7]  # the cap is 5
    known = {r.id for r in restart_runs(prefect_lab)}
    for hostname in fleet:
        prefect_lab.admin.overload(hostname, 8.0)

    [run] = finished_runs(prefect_lab, known, 1)

    assert run.state.is_failed()
    assert "blast-radius cap of 5" in run.state.message, run.state.message
    assert prefect_lab.admin.restarts() == {}
    prefect_lab.reset(10)


def test_an_alert_resolved_before_its_run_starts_restarts_nothing(prefect_lab: Lab) -> None:
    prefect_lab.reset(10)
    known = {r.id for r in restart_runs(prefect_lab)}
    with lab_server(prefect_lab) as client:
        client.update_work_pool(WORK_POOL, WorkPoolUpdate(is_paused=True))  # no run taken
    try:
        prefect_lab.overload(8.0, "lab-web-01")
        wait_until(
            lambda: [r for r in restart_runs(prefect_lab) if r.id not in known],
            60,
            "the alert's run to be created",
        )
        prefect_lab.admin.overload("lab-web-01", None)  # recovers on its own
        wait_until(
            lambda: alert_events(prefect_lab, "opsflow.alert.resolved", "lab-web-01"),
            60,
            "the alert to resolve",
        )
    finally:
        with lab_server(prefect_lab) as client:
            client.update_work_pool(WORK_POOL, WorkPoolUpdate(is_paused=False))

    [run] = finished_runs(prefect_lab, known, 1)

    assert run.parameters["policy"]["selector"] == {"hostnames": ["lab-web-01"]}
    assert prefect_lab.admin.restarts() == {}
    assert "1 host recovered before restart" in run.state.message, run.state.message
