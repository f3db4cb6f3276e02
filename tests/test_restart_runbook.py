"""The main runbook end to end against the lab: what it restarts, verifies and reports."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from opsflow.blocks import Prometheus
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.opsapi import Transport
from opsflow.tasks import RunbookAborted

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
    "job_timeout_seconds": 30,
}


def run(policy: RestartPolicy):
    """Run the flow; return (state, report or exception)."""
    state = restart_overloaded_hosts(policy, return_state=True)
    try:
        return state, state.result(raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - the flow's own exception is the result here
        return state, exc


def artifacts_of(flow_run_id) -> dict[str, object]:
    async def read():
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            return {a.key: a.data for a in found}

    return asyncio.run(read())


def test_restarts_exactly_the_overloaded_hosts_and_verifies_them(fresh_lab):
    overloaded = ["lab-web-03", "lab-db-06", "lab-web-09"]
    fresh_lab.overload(8.0, *overloaded)

    state, report = run(RestartPolicy(threshold=4, recovery_threshold=2, **FAST))

    assert state.is_completed(), state.message
    assert report.outcome == "completed"
    assert sorted(report.verified) == sorted(overloaded)
    assert fresh_lab.admin.restarts() == dict.fromkeys(overloaded, 1)  # the lab's own record
    loads = fresh_lab.prometheus_loads()
    assert all(loads[name] < 4 for name in overloaded), loads
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert {"restart-plan", "restart-report", "restart-summary"} <= artifacts.keys()
    table = json.loads(artifacts["restart-report"])
    assert sorted(r["host"] for r in table) == sorted(overloaded)
    assert all(r["verified"] and r["load after"] < 2 for r in table)


def test_dry_run_restarts_nothing(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02")

    state, report = run(RestartPolicy(dry_run=True, **FAST))

    assert report.outcome == "dry_run"
    assert sorted(report.hostnames("planned")) == ["lab-db-02", "lab-web-01"]
    assert fresh_lab.jobs() == []
    assert fresh_lab.admin.restarts() == {}


def test_selector_limits_what_is_touched(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02")

    state, report = run(RestartPolicy(selector={"tags": ["db"]}, **FAST))

    assert report.verified == ["lab-db-02"]
    assert fresh_lab.admin.restarts() == {"lab-db-02": 1}


def test_no_prometheus_data_fails_before_any_job(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")

    state, error = run(RestartPolicy(query='node_load1{job="no-such-job"}', **FAST))

    assert state.is_failed()
    assert isinstance(error, RunbookAborted)
    assert "no series" in str(error) and "nothing was done" in str(error)
    assert fresh_lab.jobs() == []


def test_prometheus_down_fails_before_any_job(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01")
    Prometheus(url="http://127.0.0.1:9", transport=Transport(retries=0)).save(
        "prometheus-down", overwrite=True
    )

    state, error = run(RestartPolicy(**{**FAST, "prometheus": "prometheus-down"}))

    assert state.is_failed()
    assert isinstance(error, RunbookAborted)
    assert "cannot connect to Prometheus" in str(error)
    assert fresh_lab.jobs() == []


def test_failed_restart_stops_the_rollout_and_names_untouched_hosts(fresh_lab):
    fresh_lab.overload(9.0, "lab-web-01")  # highest load: first batch
    fresh_lab.overload(8.0, "lab-db-04", "lab-web-05", "lab-db-08")
    fresh_lab.admin.fail_restart("lab-web-01")

    state, report = run(RestartPolicy(max_failures=1, **{**FAST, "batch_size": 1}))

    assert state.is_failed()
    assert report.outcome == "failed"
    assert report.hostnames("restart failed") == ["lab-web-01"]
    assert sorted(report.not_touched) == ["lab-db-04", "lab-db-08", "lab-web-05"]
    assert fresh_lab.admin.restarts() == {}
    failed = next(h for h in report.hosts if h.hostname == "lab-web-01")
    assert "Job for nginx.service failed" in failed.detail


def test_more_candidates_than_the_cap_aborts_before_acting(fresh_lab):
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02", "lab-web-03")

    state, report = run(RestartPolicy(max_hosts=2, **FAST))

    assert state.is_failed()
    assert report.outcome == "aborted"
    assert "blast-radius cap of 2" in report.reason
    assert fresh_lab.jobs() == []


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("threshold", -1, "greater than 0"),
        ("batch_size", 0, "greater than or equal to 1"),
        ("recovery_threshold", 9, "recovery_threshold (9) must not be above threshold"),
        ("service", "nginx; rm -rf /", "pattern"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(field, value, words):
    with pytest.raises(ValueError) as caught:
        RestartPolicy(**{field: value})

    assert field in str(caught.value) and words in str(caught.value)


def test_an_ipv6_host_is_joined_restarted_and_verified(fresh_lab):
    from opsflow.blocks import OpsPlatform
    from opsflow.opsapi import HostSpec

    client = OpsPlatform.load("lab").get_client()
    client.create_host(HostSpec(hostname="lab-v6-01", ip="::1", tags=["lab", "v6"]))
    fresh_lab.overload(8.0, "lab-v6-01")
    answer = requests.get(
        f"{fresh_lab.config.prometheus_url}/api/v1/query",
        params={"query": 'node_load1{hostname="lab-v6-01"}'},
        timeout=5,
    ).json()
    [series] = answer["data"]["result"]
    assert series["metric"]["instance"] == "[::1]:9100"  # as Prometheus writes IPv6

    state, report = run(RestartPolicy(selector={"tags": ["v6"]}, **FAST))

    assert state.is_completed(), state.message
    assert report.verified == ["lab-v6-01"]
    assert report.hosts_without_data == []
    assert fresh_lab.admin.restarts() == {"lab-v6-01": 1}
