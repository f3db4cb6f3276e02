"""Judging a batch: acted on, healthy, and the signal back on its good side, or why not."""

from __future__ import annotations

from opsflow.opsapi.models import Job
from opsflow.tasks.rollout_plan import Candidate
from opsflow.tasks.rollout_policy import Action, Signal
from opsflow.tasks.rollout_report import judge_batch

RESTART = Action(
    name="restart",
    done="restarted",
    command="systemctl restart nginx",
    health_command="systemctl is-active nginx",
)
LOAD = Signal(name="load", query="node_load1", threshold=4, recovery=2.0)

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

    judged = judge_batch(
        BATCH, 1, RESTART, restart, health, {"10.0.0.1": 0.5, "10.0.0.2": 1.9}, LOAD
    )

    assert [(o.hostname, o.result, o.verified) for o in judged] == [
        ("web-1", "verified", True),
        ("web-2", "verified", True),
    ]


def test_each_way_of_failing_is_named():
    restart = job("partial", h1=("failed", 1, "unit nginx not found"), h2=("success", 0, ""))
    health = job("failed", h2=("failed", 3, "inactive"))

    judged = judge_batch(BATCH, 2, RESTART, restart, health, {}, LOAD)

    assert [(o.result, o.batch) for o in judged] == [("restart failed", 2), ("unhealthy", 2)]
    assert "unit nginx not found" in judged[0].detail
    assert judged[1].detail.startswith("failed, exit 3")


def test_load_still_high_or_unknown_is_not_recovered():
    ok = job("success", h1=("success", 0, ""), h2=("success", 0, ""))

    judged = judge_batch(BATCH, 1, RESTART, ok, ok, {"10.0.0.1": 2.0, "10.0.0.2": None}, LOAD)

    assert [o.result for o in judged] == ["load did not recover", "load did not recover"]
    assert judged[0].detail == "load 2.00, needs < 2"
    assert judged[1].detail == "load no data, needs < 2"


def test_a_host_the_platform_never_reported_failed_its_restart():
    restart = job("cancelled", h1=("success", 0, ""))

    judged = judge_batch(BATCH, 1, RESTART, restart, None, {}, LOAD)

    assert judged[1].result == "restart failed"
    assert judged[1].detail == "restart job cancelled"


def test_without_a_signal_a_host_that_exited_0_succeeded_and_keeps_its_output():
    command = Action(name="command", done="ran", command="uptime")
    ran = job("partial", h1=("success", 0, ""), h2=("failed", 2, "no such file"))

    judged = judge_batch(BATCH, 1, command, ran, None, {}, None)

    assert [(o.result, o.failed, o.exit_code) for o in judged] == [
        ("succeeded", False, 0),
        ("command failed", True, 2),
    ]
    assert judged[1].stderr == "no such file" and "no such file" in judged[1].detail


def test_a_signal_whose_bad_side_is_below_recovers_above_its_bound():
    free = Signal(name="free memory", query="mem_free", threshold=10, recovery=20, side="below")
    ok = job("success", h1=("success", 0, ""), h2=("success", 0, ""))
    action = Action(name="restart", done="restarted", command="x")

    judged = judge_batch(BATCH, 1, action, ok, None, {"10.0.0.1": 35.0, "10.0.0.2": 20.0}, free)

    assert [o.result for o in judged] == ["verified", "free memory did not recover"]
    assert judged[1].detail == "free memory 20.00, needs > 20"
