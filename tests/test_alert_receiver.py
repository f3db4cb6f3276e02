"""The Alertmanager webhook receiver against the real lab inventory and the suite's Prefect API:
what Alertmanager sees (status codes, reasons, time) and which events reach Prefect."""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prefect.client.orchestration import get_client
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter

from opsflow.blocks import OpsPlatform
from opsflow.flows.services.alert_receiver import receiver_app
from opsflow.tasks.events import alert_group_id
from tests.conftest import Lab, wait_until

TOKEN = "receiver-test-token-0001"


@pytest.fixture
def receiver(fresh_lab: Lab) -> Iterator[TestClient]:
    app = receiver_app(OpsPlatform.load("lab"), token=TOKEN, timeout=2)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for the alerts, under a group key of its own."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="HostOverloaded", test="{uuid.uuid4().hex}"}}',
        "status": status,
        "receiver": "opsflow",
        "groupLabels": {"alertname": "HostOverloaded"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


def alert(instance: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HostOverloaded", "instance": instance, **labels},
        "annotations": {"summary": "load over 4"},
        "startsAt": "2026-11-30T05:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": uuid.uuid4().hex[:16],
    }


def events_of(group_key: str, name: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_events(
            EventFilter(
                event=EventNameFilter(name=[name]),
                any_resource=EventAnyResourceFilter(id=[alert_group_id(group_key)]),
            ),
            limit=50,
        ).events


def ip_of(lab: Lab, hostname: str) -> str:
    return lab.admin.host(hostname)["ip"]


def test_a_firing_alert_becomes_events_for_its_host_only(fresh_lab, receiver):
    body = notification(
        alert(f"{ip_of(fresh_lab, 'lab-web-03')}:9100"),
        alert("lab-db-04", hostname="lab-db-04"),  # matched by name when not by address
        alert("10.99.0.7:9100"),  # no such host: reported, never acted on
    )
    answer = receiver.post("/alerts", json=body)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "emitted": 2,
        "firing": {"HostOverloaded": ["lab-web-03", "lab-db-04"]},
        "unmapped": ["10.99.0.7:9100"],
    }
    firing = wait_until(
        lambda: len(found := events_of(body["groupKey"], "opsflow.alert.firing")) == 2 and found,
        30,
        "the host events",
    )
    assert {e.resource.id for e in firing} == {"opsflow.host.lab-web-03", "opsflow.host.lab-db-04"}
    assert firing[0].payload["alertname"] == "HostOverloaded"
    assert firing[0].payload["annotations"] == {"summary": "load over 4"}
    [group] = wait_until(
        lambda: events_of(body["groupKey"], "opsflow.alerts.firing"), 30, "the group event"
    )
    assert group.payload["hostnames"] == ["lab-web-03", "lab-db-04"]
    assert group.resource["opsflow.alertname"] == "HostOverloaded"


def test_alertmanagers_retry_of_a_notification_emits_nothing_twice(fresh_lab, receiver):
    body = notification(alert(f"{ip_of(fresh_lab, 'lab-web-01')}:9100"))
    first = receiver.post("/alerts", json=body)
    again = receiver.post("/alerts", json=copy.deepcopy(body))

    assert first.json()["emitted"] == 1
    assert again.status_code == 200 and again.json()["emitted"] == 0
    # One more notification after them: the receiver sends its events in order, so once this
    # one is stored, a second copy of the first would be stored too.
    later = notification(alert(f"{ip_of(fresh_lab, 'lab-db-02')}:9100"))
    assert receiver.post("/alerts", json=later).json()["emitted"] == 1
    wait_until(lambda: events_of(later["groupKey"], "opsflow.alerts.firing"), 30, "a later event")
    assert len(events_of(body["groupKey"], "opsflow.alert.firing")) == 1
    assert len(events_of(body["groupKey"], "opsflow.alerts.firing")) == 1


def test_a_resolved_alert_is_a_resolved_event_and_starts_nothing(fresh_lab, receiver):
    firing = alert(f"{ip_of(fresh_lab, 'lab-web-05')}:9100")
    resolved = {**firing, "status": "resolved", "endsAt": "2026-11-30T05:01:00.000Z"}
    body = notification(resolved, status="resolved")

    answer = receiver.post("/alerts", json=body)

    assert answer.json()["firing"] == {}
    [event] = wait_until(
        lambda: events_of(body["groupKey"], "opsflow.alert.resolved"), 30, "the resolved event"
    )
    assert event.resource.id == "opsflow.host.lab-web-05"
    assert events_of(body["groupKey"], "opsflow.alerts.firing") == []


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "missing or wrong bearer token"), ({"Authorization": "Bearer nope"}, "wrong")],
)
def test_a_request_without_the_token_is_refused(fresh_lab, headers, reason):
    app = receiver_app(OpsPlatform.load("lab"), token=TOKEN)
    with TestClient(app) as client:
        answer = client.post("/alerts", json=notification(alert("10.0.0.1:9100")), headers=headers)
    assert answer.status_code == 401
    assert reason in answer.json()["error"]
    assert TOKEN not in answer.text


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"not json", "body"),
        (b'{"version": "4", "groupKey": "g", "status": "firing"}', "alerts"),
        (b'{"version": "3", "groupKey": "g", "status": "firing", "alerts": []}', "version"),
        (
            b'{"version": "4", "groupKey": "g", "status": "firing", '
            b'"alerts": [{"status": "burning", "labels": {}, "startsAt": "t", "fingerprint": "f"}]}',
            "alerts.0.status",
        ),
    ],
)
def test_a_malformed_body_is_a_400_naming_what_is_wrong(receiver, body, names):
    answer = receiver.post("/alerts", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    said = answer.json()["error"]
    assert said.startswith("not an Alertmanager webhook body (version 4): ")
    assert names in said


def test_an_inventory_that_does_not_answer_in_time_is_a_503_within_the_timeout(fresh_lab, receiver):
    fresh_lab.admin.faults({"path": "^/api/v1/hosts", "fault": "latency", "seconds": 6})
    try:
        started = time.monotonic()
        answer = receiver.post("/alerts", json=notification(alert("10.0.0.1:9100")))
        took = time.monotonic() - started
    finally:
        fresh_lab.admin.faults()
    assert answer.status_code == 503
    assert "not done within 2s" in answer.json()["error"]
    assert took < 4  # Alertmanager is never held past the receiver's timeout (2 s here)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_bearer_scheme_is_taken_in_any_case(fresh_lab, receiver, scheme):
    body = notification(alert(f"{ip_of(fresh_lab, 'lab-web-03')}:9100"))
    answer = receiver.post("/alerts", json=body, headers={"Authorization": f"{scheme} {TOKEN}"})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"])
def test_no_schema_or_docs_page_is_served(receiver, path):
    del receiver.headers["Authorization"]
    assert receiver.get(path).status_code == 404


def test_a_notification_with_too_many_alerts_is_a_413(receiver):
    body = notification(*(alert(f"10.99.0.{i % 250}:9100") for i in range(1001)))
    answer = receiver.post("/alerts", json=body)
    assert answer.status_code == 413
    assert answer.json() == {
        "error": "1001 alerts in one notification, over 1000 (the receiver's --max-alerts); "
        "set max_alerts in Alertmanager's webhook_config"
    }


def lab_alerts(lab: Lab, count: int) -> list[dict[str, Any]]:
    """`count` firing alerts, each of its own, spread over the lab's hosts."""
    addresses = [h["ip"] for h in lab.admin.hosts()]
    return [alert(f"{addresses[i % len(addresses)]}:9100") for i in range(count)]


def test_a_long_notification_ends_at_the_timeout(fresh_lab):
    # 10,000 alerts of lab hosts: about 4 s of events, past the 1 s timeout
    app = receiver_app(
        OpsPlatform.load("lab"), timeout=1, max_alerts=10_000, max_body_bytes=10 << 20
    )
    with TestClient(app) as client:
        client.get("/healthz")
        started = time.monotonic()
        answer = client.post("/alerts", json=notification(*lab_alerts(fresh_lab, 10_000)))
        took = time.monotonic() - started
    assert answer.status_code == 503
    assert "not done within 1s" in answer.json()["error"]
    assert took < 2


def test_another_notification_is_answered_while_a_long_one_is_processed(fresh_lab):
    app = receiver_app(OpsPlatform.load("lab"), max_alerts=5_000, max_body_bytes=10 << 20)
    long_one = notification(*lab_alerts(fresh_lab, 5_000))  # about 2 s of events
    short_one = notification(alert(f"{ip_of(fresh_lab, 'lab-db-02')}:9100"))
    answers: dict[str, Any] = {}
    with TestClient(app) as client:
        client.get("/healthz")
        behind = threading.Thread(
            target=lambda: answers.update(long=client.post("/alerts", json=long_one))
        )
        behind.start()
        time.sleep(0.3)  # the long one is being processed
        started = time.monotonic()
        health = client.get("/healthz")
        short = client.post("/alerts", json=short_one)
        took = time.monotonic() - started
        still_busy = behind.is_alive()
        behind.join(30)
    assert health.status_code == 200 and short.status_code == 200, short.text
    assert short.json()["emitted"] == 1
    assert still_busy and took < 0.5  # 0.05 s here; 2 s behind the long one before
    assert answers["long"].status_code == 200 and answers["long"].json()["emitted"] == 5_000
