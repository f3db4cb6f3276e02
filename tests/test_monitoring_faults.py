"""Monitoring faults against the lab's real Prometheus: down, empty, NaN, stale.

The rule: never act on missing or stale data. A host without a current, real number is not
restarted (it is listed as a host without data); a run without any usable number stops.
"""

from __future__ import annotations

import pytest
import requests

from opsflow.blocks import Prometheus
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.opsapi import Transport
from opsflow.tasks import RunbookAborted
from opsflow.tasks.monitoring import (
    current_values,
    only_instances,
    query_with_ages,
    values_of_ips,
)
from tests.conftest import free_ports, wait_until
from tests.test_restart_runbook import run

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
}


@pytest.fixture
def lab_with_metric_faults(fresh_lab):
    yield fresh_lab
    for host in fresh_lab.admin.hosts():
        fresh_lab.admin.metrics_fault(host["hostname"], None)
    # A replayed sample carries its own timestamp, so Prometheus would serve it for 5 minutes.
    requests.post(
        f"{fresh_lab.config.prometheus_url}/api/v1/admin/tsdb/delete_series",
        params={"match[]": '{exporter="replay"}'},
        timeout=10,
    ).raise_for_status()


def make_unusable(lab, hostname: str, fault: str) -> None:
    """The host's load becomes NaN, or comes only as a 90 s old replayed sample; returns once
    Prometheus serves it that way."""
    lab.admin.metrics_fault(hostname, fault)
    if fault == "nan":
        wait_until(lambda: str(lab.prometheus_loads()[hostname]) == "nan", 20, "NaN in Prometheus")
        return
    wait_until(
        lambda: lab.prometheus_query(
            f'time() - timestamp(node_load1{{hostname="{hostname}"}})', 60
        ),
        20,
        f"Prometheus to serve {hostname}'s replayed sample",
    )
    wait_until(
        lambda: not lab.prometheus_query(f'node_load1{{hostname="{hostname}",exporter=""}}', -1),
        20,
        f"{hostname}'s live series to end",
    )


def assert_nothing_done(lab, state, report, says: str) -> None:
    assert state.is_failed()
    assert isinstance(report, RunbookAborted)
    assert says in str(report)
    assert lab.jobs() == []
    assert lab.admin.restarts() == {}


def test_prometheus_down_stops_the_runbook_before_it_acts(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    Prometheus(
        url=f"http://127.0.0.1:{free_ports().prometheus}", transport=Transport(retries=1)
    ).save("prometheus-down", overwrite=True)

    state, report = run(RestartPolicy(**{**FAST, "prometheus": "prometheus-down"}))

    assert_nothing_done(fresh_lab, state, report, "no usable load data, so nothing was done")
    assert "ConnectionFailed" in state.message or "cannot connect" in state.message.lower()


def test_an_empty_answer_stops_the_runbook_before_it_acts(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")

    state, report = run(RestartPolicy(query='node_load1{hostname="no-such-host"}', **FAST))

    assert_nothing_done(fresh_lab, state, report, "Prometheus returned no series")


@pytest.mark.parametrize(("fault", "prometheus_serves"), [("nan", "nan"), ("stale", "8.0")])
def test_a_host_without_a_usable_sample_is_not_acted_on_and_the_others_are(
    lab_with_metric_faults, fault, prometheus_serves
):
    lab = lab_with_metric_faults
    lab.overload(8.0, "lab-web-01", "lab-db-02")
    make_unusable(lab, "lab-web-01", fault)

    state, report = run(RestartPolicy(max_sample_age_seconds=30, **FAST))

    # What a naive query would see (for stale: 8.0, and act on it).
    assert str(lab.prometheus_loads()["lab-web-01"]) == prometheus_serves
    assert state.is_completed(), state.message
    assert report.verified == ["lab-db-02"]
    assert "lab-web-01" in report.hosts_without_data
    assert lab.admin.restarts() == {"lab-db-02": 1}


@pytest.mark.parametrize(("fault", "says"), [("nan", "(NaN)"), ("stale", "(stale, ")])
def test_only_unusable_samples_stop_the_runbook(lab_with_metric_faults, fault, says):
    lab = lab_with_metric_faults
    lab.overload(8.0, "lab-web-01")
    make_unusable(lab, "lab-web-01", fault)

    state, report = run(
        RestartPolicy(query='node_load1{hostname="lab-web-01"}', max_sample_age_seconds=30, **FAST)
    )

    assert_nothing_done(lab, state, report, f"is NaN or stale {says}")


@pytest.mark.parametrize("fault", ["nan", "stale"])
def test_a_batch_read_asks_for_its_hosts_only_and_judges_them_as_the_fleet_read_does(
    lab_with_metric_faults, fault
):
    """Before each batch and while waiting for recovery the runbook reads its batch's hosts
    only (a narrowed selector, not the fleet): same values, same refusal of unusable samples."""
    lab = lab_with_metric_faults
    lab.overload(8.0, "lab-db-02")
    make_unusable(lab, "lab-web-01", fault)
    ips = {h["hostname"]: h["ip"] for h in lab.admin.hosts()}
    batch = [ips["lab-web-01"], ips["lab-db-02"], ips["lab-web-03"], "10.255.255.254"]

    with Prometheus.load("lab").get_client() as client:
        narrowed = client.query(only_instances("node_load1", batch))
        fleet, _ = current_values(*query_with_ages(client, "node_load1", None, 30), 30)
        batch_read = values_of_ips(client, "node_load1", batch, 30, None)

    # Prometheus answered for the batch's hosts only (the unknown address has no series).
    assert set(narrowed["hostname"]) == {"lab-web-01", "lab-db-02", "lab-web-03"}
    assert len(fleet) == 9  # lab-web-01 is unusable in the fleet read too
    by_ip = {r.ip: r.value for r in fleet}
    assert batch_read == {
        ips["lab-web-01"]: None,
        ips["lab-db-02"]: by_ip[ips["lab-db-02"]],
        ips["lab-web-03"]: by_ip[ips["lab-web-03"]],
        "10.255.255.254": None,
    }
    assert batch_read[ips["lab-db-02"]] == 8.0


def test_prometheus_lost_between_a_restart_and_its_check_is_reported_host_by_host(fresh_lab):
    """Batch 1 (lab-web-01) is restarted, then Prometheus stops before its check: it is
    "not verified" (restarted, which the lab's count shows), and batch 2 (lab-db-02), whose
    load cannot be read again, is "not touched". The counts agree with the hosts."""
    from opsflow.lab.stack import down, up
    from tests.test_restart_guarantees import run_in_thread

    fresh_lab.overload(9.0, "lab-web-01")
    fresh_lab.overload(8.0, "lab-db-02")
    # The restart job goes through at once; the health check's submission waits 8 s, time
    # for Prometheus to be stopped between the restart and the verification.
    fresh_lab.admin.faults(
        {"path": "/api/v1/jobs$", "method": "POST", "fault": "latency", "seconds": 0},
        {"path": "/api/v1/jobs$", "method": "POST", "fault": "latency", "seconds": 8},
    )
    policy = RestartPolicy(**{**FAST, "batch_size": 1, "max_failures": 2})
    thread, box = run_in_thread(policy)
    try:
        wait_until(lambda: fresh_lab.admin.restarts().get("lab-web-01"), 60, "the restart")
        assert down(fresh_lab.config, only=("prometheus",)) == ["prometheus"]
        thread.join(300)
    finally:
        fresh_lab.admin.faults()
        up(fresh_lab.config, save_blocks=False)

    state = box["state"]
    report = state.result(raise_on_failure=False)
    by_host = {h.hostname: h for h in report.hosts}
    assert state.is_failed()
    assert by_host["lab-web-01"].result == "not verified"
    assert "restarted and healthy; not verified: monitoring unreachable" in (
        by_host["lab-web-01"].detail
    )
    assert by_host["lab-db-02"].result == "not touched"
    assert "the load could not be read again" in by_host["lab-db-02"].detail
    assert fresh_lab.admin.restarts() == {"lab-web-01": 1}
    assert "0 verified, 1 failed, 1 not touched" in report.summary
