"""The receiver's decisions without a server: which host an alert is about, what is emitted
once, what a notification must look like; the selector an alert's run gets."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from opsflow.flows.services.alert_receiver import AlertReceiver, Inventory
from opsflow.flows.services.deployments import alert_trigger
from opsflow.opsapi.alertmanager import WebhookMessage
from opsflow.opsapi.models import Host, HostSelector

HOSTS = [
    Host(id="1", hostname="web-01", ip="10.0.0.1", tags=["web"]),
    Host(id="2", hostname="db-01", ip="fd00::2", tags=["db"]),
]


def message(*alerts: dict, group: str = "g1") -> WebhookMessage:
    return WebhookMessage.model_validate(
        {"version": "4", "groupKey": group, "status": "firing", "alerts": list(alerts)}
    )


def alert(instance: str, status: str = "firing", fingerprint: str = "f1", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": "HostOverloaded", "instance": instance, **labels},
        "startsAt": "2026-11-30T05:00:00Z",
        "fingerprint": fingerprint,
    }


def receive(receiver: AlertReceiver, body: WebhookMessage) -> dict:
    return asyncio.run(receiver.receive(body))


@pytest.fixture
def emitted() -> list:
    return []


@pytest.fixture
def receiver(emitted: list) -> AlertReceiver:
    async def emit(event: object) -> None:
        emitted.append(event)

    return AlertReceiver(Inventory(lambda: HOSTS), emit)


@pytest.mark.parametrize(
    ("instance", "labels", "host"),
    [
        ("10.0.0.1:9100", {}, "web-01"),
        ("10.0.0.1", {}, "web-01"),
        ("[fd00::2]:9100", {}, "db-01"),
        ("fd00::2", {}, "db-01"),
        ("node-exporter:9100", {"hostname": "db-01"}, "db-01"),
        ("web-01:9100", {}, "web-01"),
        ("10.9.9.9:9100", {}, None),
        ("10.9.9.9:9100", {"hostname": "nope"}, None),
    ],
)
def test_an_alert_is_matched_to_its_host_by_address_then_name(receiver, instance, labels, host):
    answer = receive(receiver, message(alert(instance, **labels)))
    assert answer["firing"] == ({"HostOverloaded": [host]} if host else {})
    assert answer["unmapped"] == ([] if host else [instance])


def test_the_same_alert_twice_is_emitted_once_and_a_new_start_again(receiver, emitted):
    first = receive(receiver, message(alert("10.0.0.1:9100")))
    again = receive(receiver, message(alert("10.0.0.1:9100")))
    assert (first["emitted"], again["emitted"]) == (1, 0)
    assert [e.event for e in emitted] == ["opsflow.alert.firing", "opsflow.alerts.firing"]
    refired = alert("10.0.0.1:9100")
    refired["startsAt"] = "2026-11-30T06:00:00Z"
    assert receive(receiver, message(refired))["emitted"] == 1
    assert len({e.id for e in emitted}) == len(emitted) == 4


def test_a_notification_emits_one_group_event_per_alert_name(receiver, emitted):
    receive(
        receiver,
        message(
            alert("10.0.0.1:9100", fingerprint="a"),
            alert("fd00::2", fingerprint="b"),
            alert("10.0.0.1:9100", fingerprint="c", alertname="DiskFull"),
        ),
    )
    groups = {
        e.payload["alertname"]: e.payload["hostnames"]
        for e in emitted
        if e.event == "opsflow.alerts.firing"
    }
    assert groups == {"HostOverloaded": ["web-01", "db-01"], "DiskFull": ["web-01"]}


def test_a_resolved_alert_starts_no_run(receiver, emitted):
    receive(receiver, message(alert("10.0.0.1:9100", status="resolved")))
    assert [e.event for e in emitted] == ["opsflow.alert.resolved"]


@pytest.mark.parametrize(
    "body",
    [
        {"version": "4", "groupKey": "g", "status": "firing", "alerts": []},
        {"version": "4", "groupKey": "", "status": "firing", "alerts": [alert("x")]},
        {
            "version": "4",
            "groupKey": "g",
            "status": "firing",
            "alerts": [{**alert("x"), "fingerprint": ""}],
        },
        {"version": "4", "groupKey": "g", "status": "on fire", "alerts": [alert("x")]},
    ],
)
def test_a_body_alertmanager_would_not_send_is_refused(body):
    with pytest.raises(ValidationError):
        WebhookMessage.model_validate(body)


def test_an_alerts_run_selects_exactly_its_hosts_and_an_empty_list_selects_none():
    assert [h.hostname for h in HOSTS if HostSelector(hostnames=["db-01"]).matches(h)] == ["db-01"]
    assert [h for h in HOSTS if HostSelector(hostnames=[]).matches(h)] == []
    assert len([h for h in HOSTS if HostSelector().matches(h)]) == 2
    with pytest.raises(ValidationError, match="hostname"):
        HostSelector.model_validate({"hostname": ["db-01"]})  # a typo is refused, not ignored


def test_the_alert_trigger_matches_its_alert_and_templates_the_hosts():
    trigger = alert_trigger("DiskFull", {"platform": {"$ref": {"block_document_id": "x"}}})
    assert trigger.expect == {"opsflow.alerts.firing"}
    assert trigger.match.root["opsflow.alertname"] == "DiskFull"
    policy = trigger.parameters["policy"]
    assert policy["selector"] == {"hostnames": "{{ event.payload.hostnames }}"}
    assert policy["platform"] == {"$ref": {"block_document_id": "x"}}


def test_the_command_lines_limits_are_the_receivers_own():
    from opsflow.flows.cli import alerts as command
    from opsflow.flows.services import alert_receiver

    assert (command.MAX_BODY_BYTES, command.MAX_ALERTS) == (
        alert_receiver.MAX_BODY_BYTES,
        alert_receiver.MAX_ALERTS,
    )
