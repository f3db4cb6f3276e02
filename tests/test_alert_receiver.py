"""The Alertmanager webhook receiver against the real lab inventory and the suite's Prefect API:
what Alertmanager sees (status codes, reasons, time) and which events reach Prefect; and
`opsflow alerts serve` itself, a real process over HTTPS, refusing what it must."""

from __future__ import annotations

import copy
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from prefect.client.orchestration import get_client
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter
from prefect.settings import PREFECT_API_URL

from opsflow.blocks import OpsPlatform
from opsflow.flows.cli.main import QUIET_PREFECT
from opsflow.flows.services.alert_receiver import receiver_app
from opsflow.lab.tls import ensure_certificates
from opsflow.tasks.events import alert_group_id
from tests.cli_in_process import opsflow_in_process
from tests.conftest import Lab, free_port, wait_until

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


# `opsflow alerts serve`, the command: what it refuses before it listens, in this process


def serve_in_process(*args: str) -> tuple[int, str]:
    done = opsflow_in_process("alerts", "serve", *args, api=None)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_listening_beyond_loopback_without_a_token_is_refused(host, monkeypatch):
    monkeypatch.delenv("OPSFLOW_ALERTS_TOKEN", raising=False)
    code, said = serve_in_process("--host", host)
    assert code == 2
    assert said.splitlines() == [
        f"--host {host} listens beyond loopback, so Alertmanager must send a bearer token: give "
        "--token-file FILE (or set OPSFLOW_ALERTS_TOKEN), or listen on --host 127.0.0.1"
    ]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The lab's CA, and a server certificate for 127.0.0.1 with its key."""
    return ensure_certificates(tmp_path_factory.mktemp("tls"))


def test_tls_needs_a_certificate_and_its_own_key(certificates, tmp_path):
    _, cert, key = certificates
    _, other_cert, _ = ensure_certificates(tmp_path / "other")
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(
        serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    cases = [
        (["--tls-cert", cert], "--tls-cert needs --tls-key too: give both files, or neither"),
        (["--tls-key", key], "--tls-key needs --tls-cert too: give both files, or neither"),
        (
            ["--tls-cert", tmp_path / "nowhere.pem", "--tls-key", key],
            f"--tls-cert: cannot read {tmp_path / 'nowhere.pem'}: No such file or directory",
        ),
        (
            ["--tls-cert", cert, "--tls-key", tmp_path / "nowhere.pem"],
            f"--tls-key: cannot read {tmp_path / 'nowhere.pem'}: No such file or directory",
        ),
        (
            ["--tls-cert", other_cert, "--tls-key", key],
            f"--tls-cert/--tls-key: {other_cert} and {key} are not a PEM certificate and its "
            "own unencrypted key (KEY_VALUES_MISMATCH)",
        ),
        (
            ["--tls-cert", cert, "--tls-key", encrypted],  # never a password prompt
            f"--tls-cert/--tls-key: {cert} and {encrypted} are not a PEM certificate and its own "
            "unencrypted key",
        ),
        (
            ["--tls-cert", key, "--tls-key", key],
            f"--tls-cert/--tls-key: {key} and {key} are not a PEM certificate and its own "
            "unencrypted key",
        ),
    ]
    for args, line in cases:
        code, said = serve_in_process(*map(str, args))
        assert code == 2, said
        [said_line] = said.splitlines()
        assert said_line.startswith(line), said_line


# `opsflow alerts serve`, a real process: HTTPS, limits on what it reads, its log


@dataclass
class Served:
    """A running `opsflow alerts serve` and where it answers."""

    url: str
    port: int
    ca: Path | None
    output: Path
    process: subprocess.Popen[bytes]

    def client(self, **headers: str) -> httpx.Client:
        verify = (
            ssl.create_default_context(cafile=self.ca) if self.url.startswith("https") else True
        )
        return httpx.Client(base_url=self.url, verify=verify, headers=headers)


def start_serving(args: list[str], scheme: str, ca: Path | None, directory: Path) -> Served:
    port = free_port()
    output = directory / f"receiver-{port}.out"
    env = {**os.environ, **QUIET_PREFECT, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    env.pop("OPSFLOW_ALERTS_TOKEN", None)
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "opsflow.flows", "alerts", "serve", "--platform-block", "lab"]
            + ["--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"{scheme}://127.0.0.1:{port}", port, ca, output, process)

    def answering() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the receiver ended: {output.read_text()}")
        try:
            return served.client().get("/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answering, 60, "the receiver to answer")
    return served


def stop_serving(served: Served) -> None:
    served.process.terminate()
    served.process.wait(20)


@pytest.fixture(scope="module")
def served(lab: Lab, certificates, tmp_path_factory) -> Iterator[Served]:
    """`opsflow alerts serve` over HTTPS on 127.0.0.1, with a token file."""
    ca, cert, key = certificates
    directory = tmp_path_factory.mktemp("receiver")
    token_file = directory / "token"
    token_file.write_text(TOKEN + "\n")
    args = ["--token-file", str(token_file), "--tls-cert", str(cert), "--tls-key", str(key)]
    served = start_serving(args, "https", ca, directory)
    try:
        yield served
    finally:
        stop_serving(served)
        assert TOKEN not in served.output.read_text()


def test_the_receiver_serves_https_with_the_given_certificate(lab, served):
    with served.client(Authorization=f"Bearer {TOKEN}") as client:
        body = notification(alert(f"{ip_of(lab, 'lab-web-01')}:9100"))
        answer = client.post("/alerts", json=body)
    assert answer.status_code == 200 and answer.json()["emitted"] == 1
    assert served.output.read_text().startswith(
        f"receiving Alertmanager's webhook at https://127.0.0.1:{served.port}/alerts\n"
    )
    with pytest.raises(httpx.TransportError):  # no plain HTTP on that port
        httpx.get(f"http://127.0.0.1:{served.port}/healthz", timeout=5)


def raw_post(served: Served, head: dict[str, str], body: list[bytes]) -> tuple[int, Any, float]:
    """POST /alerts as a client that sends `body`'s parts and not necessarily all it declared:
    (status, answer, seconds from the last part sent to the answer)."""
    context = ssl.create_default_context(cafile=served.ca)
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as sock,
    ):
        lines = ["POST /alerts HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {TOKEN}"]
        lines += [f"{name}: {value}" for name, value in head.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for part in body:
            sock.sendall(part)
        started = time.monotonic()
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, json.loads(answer.read()), time.monotonic() - started


TOO_LARGE = {
    "error": f"body over {1 << 20} bytes (the receiver's --max-body-bytes); "
    "lower max_alerts in Alertmanager's webhook_config"
}


def test_a_body_declared_over_the_limit_is_a_413_before_it_is_read(served):
    head = {"Content-Type": "application/json", "Content-Length": str(50_000_000)}
    status, answer, took = raw_post(served, head, [b'{"version": "4", "alerts": ['])
    assert (status, answer) == (413, TOO_LARGE)
    assert took < 1


def test_a_chunked_body_over_the_limit_is_a_413_once_the_limit_is_passed(served):
    chunk = b"[" * 65536
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 17  # 1 MiB and 64 KiB, and no end
    head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    status, answer, took = raw_post(served, head, parts)
    assert (status, answer) == (413, TOO_LARGE)
    assert took < 1


def test_alerts_that_match_no_host_are_one_log_line_per_notification(served):
    unknown = [alert(f"10.99.{i // 250}.{i % 250}:9100") for i in range(1000)]
    started = time.monotonic()
    with served.client(Authorization=f"bearer {TOKEN}") as client:
        answer = client.post("/alerts", json=notification(*unknown))
    took = time.monotonic() - started
    assert answer.status_code == 200 and len(answer.json()["unmapped"]) == 1000
    assert took < 2
    time.sleep(0.5)  # the receiver's output reaches its file
    logged = [x for x in served.output.read_text().splitlines() if "match no host" in x]
    [line] = logged
    assert line.endswith(
        " WARNING | opsflow.alerts - 1000 alerts match no host in the inventory, not acted on: "
        "10.99.0.0:9100, 10.99.0.1:9100, 10.99.0.2:9100, 10.99.0.3:9100, 10.99.0.4:9100 "
        "and 995 more"
    )


def test_beyond_loopback_with_a_token_and_no_tls_it_serves_and_warns(lab, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    served = start_serving(
        ["--host", "0.0.0.0", "--token-file", str(token_file)], "http", None, tmp_path
    )
    try:
        with served.client() as client:
            refused = client.post("/alerts", json=notification(alert("10.99.0.1:9100")))
    finally:
        stop_serving(served)
    assert refused.status_code == 401
    said = served.output.read_text()
    assert said.splitlines()[:2] == [
        f"receiving Alertmanager's webhook at http://0.0.0.0:{served.port}/alerts",
        "warning: --host 0.0.0.0 without --tls-cert/--tls-key: the bearer token and the alerts "
        "cross the network unencrypted",
    ]
    assert TOKEN not in said
