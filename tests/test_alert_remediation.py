"""From alert to verified fix with no human step, everything real: the lab's Prometheus fires
HostOverloaded, Alertmanager posts to `opsflow alerts serve`, the receiver emits
`opsflow.alerts.firing`, the restart deployment's trigger starts a run in a `prefect server
start` on PostgreSQL, one of two process workers runs it, the host is restarted and verified,
and the alert resolves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)

from opsflow.lab.prefect_stack import WORK_POOL
from opsflow.opsapi.alertmanager import AlertmanagerClient
from tests.conftest import Lab, wait_until
from tests.prefect_lab import alert_trigger, finished_runs, lab_server, prefect_lab, restart_runs

__all__ = ["prefect_lab"]  # the module's fixture
RESTART_FLOW = "restart-overloaded-hosts"


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
    # A run that left an overloaded host alone is not a green one: whoever watches sees it.
    assert second.state.is_failed()
    assert "left alone: lab-web-03" in second.state.message
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


def one_host_notification(lab: Lab, hostname: str) -> dict[str, Any]:
    """What Alertmanager sends with `group_by: [alertname, instance]`: one host per
    notification, each under a group key of its own."""
    instance = f"{lab.admin.host(hostname)['ip']}:9100"
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="HostOverloaded", instance="{instance}"}}',
        "status": "firing",
        "receiver": "opsflow",
        "groupLabels": {"alertname": "HostOverloaded", "instance": instance},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": lab.config.alertmanager_url,
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HostOverloaded", "instance": instance},
                "annotations": {},
                "startsAt": datetime.now(timezone.utc).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }


def test_eight_one_host_alerts_and_ad_hoc_runs_restart_only_the_fleet_budget(
    prefect_lab: Lab,
) -> None:
    """Eight hosts overloaded at once, as eight runs of one host each: six alert-triggered (one
    notification each) run by two workers, two ad hoc from the command line. The blast-radius
    cap (5, per run) sees one host in each; the fleet budget (5 per 30 min) sees them all."""
    prefect_lab.reset(10)
    hosts = [h["hostname"] for h in prefect_lab.admin.hosts()][:8]
    alerted, ad_hoc = hosts[:6], hosts[6:]
    # Alertmanager's own notification (grouped by alertname) is silenced: the test sends the
    # one-host notifications that `group_by: [alertname, instance]` would.
    alertmanager = AlertmanagerClient(prefect_lab.config.alertmanager_url)
    silence = alertmanager.create_silence({"alertname": "HostOverloaded"}, 10, "fleet budget test")
    known = {r.id for r in restart_runs(prefect_lab)}
    try:
        prefect_lab.overload(8.0, *hosts)
        receiver = f"http://127.0.0.1:{prefect_lab.config.ports.alert_receiver}/alerts"
        token = prefect_lab.secrets["alert_receiver_token"]
        env = {**os.environ, "PREFECT_API_URL": prefect_lab.config.prefect_api_url}
        commands = [
            subprocess.Popen(
                [sys.executable, "-m", "opsflow.flows", "run", RESTART_FLOW, "--host", name]
                + ["--platform-block", "lab", "--prometheus-block", "lab"]
                + ["--verify-window-seconds", "30", "--poll-seconds", "0.5"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name in ad_hoc
        ]
        for name in alerted:
            answer = requests.post(
                receiver,
                json=one_host_notification(prefect_lab, name),
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert answer.ok, answer.text
        outputs = [command.communicate(timeout=300)[0] for command in commands]
        runs = finished_runs(prefect_lab, known, len(alerted), timeout=300)
        restarted = prefect_lab.admin.restarts()
    finally:
        # Calm first, then lift the silence: lifted over the hosts the budget left overloaded,
        # Alertmanager notifies the receiver, and that run starts in the next test, locking
        # (and restarting) its hosts.
        prefect_lab.reset(10)
        wait_until(
            lambda: (
                not requests.get(
                    f"{prefect_lab.config.alertmanager_url}/api/v2/alerts",
                    params={"filter": 'alertname="HostOverloaded"'},
                    timeout=5,
                ).json()
            ),
            60,
            "Alertmanager to see the overloads resolved",
        )
        alertmanager.expire_silence(silence)

    assert len(restarted) == 5 and set(restarted.values()) == {1}, restarted
    assert len(runs) == len(alerted), [r.parameters for r in runs]
    refused = [r for r in runs if "fleet budget of 5 hosts per 30 min reached" in r.state.message]
    refused_ad_hoc = [o for o in outputs if "fleet budget of 5 hosts per 30 min reached" in o]
    assert len(refused) + len(refused_ad_hoc) == 3, [r.state.message for r in runs] + outputs
    assert all(r.state.is_failed() for r in refused)
    assert all(
        r.state.is_completed() and "1 host restarted and verified" in r.state.message
        for r in runs
        if r not in refused
    )
    for command, output in zip(commands, outputs, strict=True):
        assert command.returncode == (1 if output in refused_ad_hoc else 0), output
