"""Judging a batch: restarted, healthy, and back under the recovery threshold, or why not."""

from __future__ import annotations

from opsflow.opsapi.models import Job
from opsflow.tasks.restart_plan import Candidate
from opsflow.tasks.restart_report import judge_batch

BATCH = [
    Candidate(host_id="1", hostname="web-1", ip="10.0.0.1", instance="10.0.0.1:9100", value=8),
    Candidate(host_id="2", hostname="web-2", ip="10.0.0.2", instance="10.0.0.2:9100", value=7),
]


def job(status: str, **results: tuple[str, int | None, str]) -> Job:
    return Job.model_validate(
        {
            "job_id": f"j-{status}",
            "status": status,
            "results": [
                {"host_id": host.lstrip("h"), "status": s, "exit_code": code, "stderr": err}
                for host, (s, code, err) in results.items()
            ],
        }
    )


def test_restarted_healthy_and_recovered_is_verified():
    restart = job("success", h1=("success", 0, ""), h2=("success", 0, ""))
    health = job("success", h1=("success", 0, ""), h2=("success", 0, ""))

    judged = judge_batch(BATCH, 1, restart, health, {"10.0.0.1": 0.5, "10.0.0.2": 1.9}, 2.0)

    assert [(o.hostname, o.result, o.verified) for o in judged] == [
        ("web-1", "verified", True),
        ("web-2", "verified", True),
    ]


def test_each_way_of_failing_is_named():
    restart = job("partial", h1=("failed", 1, "unit nginx not found"), h2=("success", 0, ""))
    health = job("failed", h2=("failed", 3, "inactive"))

    judged = judge_batch(BATCH, 2, restart, health, {}, 2.0)

    assert [(o.result, o.batch) for o in judged] == [("restart failed", 2), ("unhealthy", 2)]
    assert "unit nginx not found" in judged[0].detail
    assert judged[1].detail.startswith("failed, exit 3")


def test_load_still_high_or_unknown_is_not_recovered():
    ok = job("success", h1=("success", 0, ""), h2=("success", 0, ""))

    judged = judge_batch(BATCH, 1, ok, ok, {"10.0.0.1": 2.0, "10.0.0.2": None}, 2.0)

    assert [o.result for o in judged] == ["load did not recover", "load did not recover"]
    assert judged[0].detail == "load 2.00, needs < 2"
    assert judged[1].detail == "load no data, needs < 2"


def test_a_host_the_platform_never_reported_failed_its_restart():
    restart = job("cancelled", h1=("success", 0, ""))

    judged = judge_batch(BATCH, 1, restart, None, {}, 2.0)

    assert judged[1].result == "restart failed"
    assert judged[1].detail == "restart job cancelled"
