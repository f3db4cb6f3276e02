"""From alert to verified fix with no human step, everything real: the lab's Prometheus fires
HostOverloaded, Alertmanager posts to `opsflow alerts serve`, the receiver emits
`opsflow.alerts.firing`, the restart deployment's trigger starts a run in a `prefect server
start` on PostgreSQL, one of two process workers runs it, the host is restarted and verified,
and the alert resolves."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)

from opsflow.lab.prefect_stack import WORK_POOL
from tests.conftest import Lab, wait_until
from tests.prefect_lab import alert_trigger, finished_runs, lab_server, prefect_lab, restart_runs

__all__ = ["prefect_lab"]  # the module's fixture


@pytest.fixture(scope="module", autouse=True)
def alert_driven(prefect_lab: Lab) -> None:
    """These tests are the alert trigger's: it starts their runs."""
    alert_trigger(prefect_lab, enabled=True)


def alert_events(lab: Lab, name: str, hostname: str, since: float | None = None) -> list[Any]:
    """Events `name` about one host (since a time.time(), if given)."""
    with lab_server(lab) as client:
        return client.read_events(
            EventFilter(
                event=EventNameFilter(name=[name]),
                resource=EventResourceFilter(id=[f"opsflow.host.{hostname}"]),
                **(
                    {
                        "occurred": EventOccurredFilter(
                            since=datetime.fromtimestamp(since, timezone.utc)
                        )
                    }
                    if since
                    else {}
                ),
            ),
            limit=50,
        ).events


def group_events(lab: Lab, since: float) -> list[Any]:
    """The receiver's `opsflow.alerts.firing` events (one per notification) since then."""
    with lab_server(lab) as client:
        return client.read_events(
            EventFilter(
                event=EventNameFilter(name=["opsflow.alerts.firing"]),
                occurred=EventOccurredFilter(since=datetime.fromtimestamp(since, timezone.utc)),
            ),
            limit=50,
        ).events


def test_an_alert_restarts_its_host_once_and_a_second_alert_within_the_cooldown_does_not(
    prefect_lab: Lab,
) -> None:
    prefect_lab.reset(10)  # no restart in the job history: no cooldown yet
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
        lambda: alert_events(prefect_lab, "opsflow.alert.resolved", "lab-web-03", started),
        60,
        "the resolved alert to come back as an event",
    )
    prefect_lab.admin.overload("lab-web-03", None)

    # Overloaded again within the cooldown: the alert is an event, its run restarts nothing.
    firing_before = len(alert_events(prefect_lab, "opsflow.alert.firing", "lab-web-03", started))
    known = {r.id for r in restart_runs(prefect_lab)}
    prefect_lab.overload(8.0, "lab-web-03")
    [second] = finished_runs(prefect_lab, known, 1)

    assert len(alert_events(prefect_lab, "opsflow.alert.firing", "lab-web-03", started)) > (
        firing_before
    )
    assert second.parameters["policy"]["selector"] == {"hostnames": ["lab-web-03"]}
    assert prefect_lab.admin.restarts() == {"lab-web-03": 1}
    assert "1 host within the cooldown" in second.state.message, second.state.message
    prefect_lab.admin.overload("lab-web-03", None)


def test_a_storm_of_alerts_is_one_run_for_exactly_the_alerting_hosts(prefect_lab: Lab) -> None:
    prefect_lab.reset(10)
    storm = ["lab-db-02", "lab-db-04", "lab-web-05"]
    started = time.time()
    known = {r.id for r in restart_runs(prefect_lab)}
    restarted_before = prefect_lab.admin.restarts()
    for hostname in storm:
        prefect_lab.admin.overload(hostname, 8.0)

    [run] = finished_runs(prefect_lab, known, 1)
    # Restarted and calm, each host's alert resolves: once Alertmanager has said so, it has
    # sent every firing notification of this storm, and each one is a receiver event.
    for hostname in storm:
        wait_until(
            lambda h=hostname: alert_events(prefect_lab, "opsflow.alert.resolved", h, started),
            60,
            f"{hostname}'s alert to resolve",
        )
    notified = [
        e.payload["hostnames"]
        for e in group_events(prefect_lab, started)
        if set(e.payload["hostnames"]) & set(storm)
    ]
    runs = [r for r in restart_runs(prefect_lab) if r.id not in known]

    assert len(notified) == 1, notified
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
