"""Faults the lab injects on demand: what is retried, what is never done twice, what stops."""

from __future__ import annotations

import time

import pytest

from opsflow.blocks import OpsPlatform
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.opsapi import BadResponse, ConnectionFailed, RequestTimedOut, ServerError

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
    "job_timeout_seconds": 30,
}


@pytest.fixture
def faulty_lab(fresh_lab):
    fresh_lab.admin.faults()
    yield fresh_lab
    fresh_lab.admin.faults()


def client(retries: int = 3, timeout: float = 30):
    platform = OpsPlatform.load("lab")
    platform.transport = platform.transport.model_copy(
        update={"retries": retries, "timeout": timeout}
    )
    return platform.get_client()


@pytest.mark.parametrize("status", [502, 503, 504])
def test_reads_are_retried_through_gateway_errors(faulty_lab, status):
    faulty_lab.admin.faults(
        {
            "path": "^/api/v1/hosts$",
            "method": "GET",
            "fault": "status",
            "status": status,
            "times": 2,
        }
    )

    hosts = client().list_hosts()

    assert len(hosts) == 10
    assert faulty_lab.admin.fault_hits() == [2]


def test_429_retry_after_is_honoured(faulty_lab):
    faulty_lab.admin.faults(
        {
            "path": "^/api/v1/hosts/",
            "fault": "status",
            "status": 429,
            "retry_after": 1.5,
            "times": 1,
        }
    )

    started = time.monotonic()
    host = client().get_host(1)

    assert host.id == "1"
    assert time.monotonic() - started >= 1.5


def test_a_server_that_keeps_failing_ends_in_a_clear_error(faulty_lab):
    faulty_lab.admin.faults(
        {"path": "^/api/v1/hosts$", "fault": "status", "status": 503, "times": 100}
    )

    with pytest.raises(
        ServerError,
        match=r"injected 503 \(503 on GET https://127\.0\.0\.1:\d+/api/v1/hosts\)",
    ):
        client(retries=2).list_hosts()

    assert faulty_lab.admin.fault_hits() == [3]  # the first try and 2 retries


@pytest.mark.parametrize("fault", ["truncate", "drop"])
def test_cut_off_answers_to_reads_are_retried(faulty_lab, fault):
    faulty_lab.admin.faults(
        {"path": "^/api/v1/hosts$", "method": "GET", "fault": fault, "times": 2}
    )

    assert len(client().list_hosts()) == 10
    assert faulty_lab.admin.fault_hits() == [2]


def test_a_lost_answer_to_job_submission_starts_one_job(faulty_lab):
    host = client().list_hosts()[0]
    faulty_lab.admin.faults({"path": "^/api/v1/job/execute$", "fault": "lost", "times": 1})

    job_id = client().execute_job([host.id], "systemctl restart nginx")
    client().wait_for_job(job_id, 30, 0.2)

    assert faulty_lab.admin.fault_hits() == [1]  # the first answer was lost...
    assert [j["job_id"] for j in faulty_lab.jobs()] == [job_id]  # ...and one job ran
    assert faulty_lab.admin.restarts() == {host.hostname: 1}


def test_a_post_without_idempotency_key_is_never_repeated(faulty_lab):
    faulty_lab.admin.faults(
        {"path": "^/api/v1/hosts$", "method": "POST", "fault": "lost", "times": 1}
    )

    with pytest.raises(ConnectionFailed, match="not repeated: the request is not idempotent"):
        client().request("POST", "/api/v1/hosts", json={"hostname": "once-01", "ip": "127.10.7.1"})

    assert len(client().list_hosts(hostname="once-01")) == 1  # created once, not twice


def test_non_json_answer_is_a_bad_response(faulty_lab):
    faulty_lab.admin.faults({"path": "^/api/v1/hosts$", "fault": "non_json", "times": 1})

    with pytest.raises(BadResponse, match="not JSON.*502 Bad Gateway"):
        client().list_hosts()


def test_a_slow_platform_times_out_naming_the_call(faulty_lab):
    faulty_lab.admin.faults(
        {"path": "^/api/v1/hosts/1$", "fault": "latency", "seconds": 3, "times": 5}
    )

    with pytest.raises(RequestTimedOut, match=r"did not answer within 1s.*GET .*/api/v1/hosts/1"):
        client(retries=0, timeout=1).get_host(1)


def test_job_submission_failing_stops_the_rollout_and_reports_it(faulty_lab):
    faulty_lab.overload(9.0, "lab-web-01")
    faulty_lab.overload(8.0, "lab-db-02")
    faulty_lab.admin.faults(
        {"path": "^/api/v1/job/execute$", "fault": "status", "status": 500, "times": 100}
    )

    state = restart_overloaded_hosts(RestartPolicy(**{**FAST, "batch_size": 1}), return_state=True)

    report = state.result(raise_on_failure=False)
    assert report.outcome == "failed"
    first = next(h for h in report.hosts if h.hostname == "lab-web-01")
    assert first.result == "restart failed" and "batch broke off" in first.detail
    assert "500 on POST" in first.detail
    assert report.not_touched == ["lab-db-02"]
    assert faulty_lab.admin.restarts() == {}


def test_a_job_the_platform_never_finishes_is_cancelled_and_stops_the_rollout(faulty_lab):
    faulty_lab.overload(9.0, "lab-web-01")
    faulty_lab.overload(8.0, "lab-db-02")
    faulty_lab.admin.hang_restart("lab-web-01")  # the platform loses track of its job

    started = time.monotonic()
    state = restart_overloaded_hosts(
        RestartPolicy(**{**FAST, "batch_size": 1, "job_timeout_seconds": 2}), return_state=True
    )

    assert time.monotonic() - started < 30  # 2 s timeout + 5 s grace, then cancelled
    report = state.result(raise_on_failure=False)
    assert report.outcome == "failed"
    first = next(h for h in report.hosts if h.hostname == "lab-web-01")
    assert first.result == "restart failed"
    assert first.detail.startswith("cancelled")
    assert "no result within the job timeout, so the runbook cancelled it" in first.detail
    assert report.not_touched == ["lab-db-02"]
    [job] = faulty_lab.jobs()
    assert job["status"] == "cancelled"  # the lab's record: nothing left running
    assert faulty_lab.admin.restarts() == {}
