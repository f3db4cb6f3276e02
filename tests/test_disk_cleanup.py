"""disk-cleanup on the rollout engine: every guarantee the restart runbook has, on full disks.

A plan and a dry run, approval, the cooldown and flapping read from the platform's job history,
the fleet budget across runs, the failure limit, the usage re-read before each batch, and the
alerts' silence; each against the lab (platform, Prometheus, Alertmanager, Prefect).
"""

from __future__ import annotations

import threading

import requests

from opsflow.flows.runbooks.disk_cleanup import DiskCleanupParams, disk_cleanup
from opsflow.lab.hosts import host_dir
from tests.conftest import Lab, flapping_events, wait_until

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
    "job_timeout_seconds": 30,
}
CLEANUP = "find var/log -name '*.gz' -mtime +7 -delete"
USAGE = DiskCleanupParams().usage_query


def fill(lab: Lab, *hostnames: str) -> None:
    """Fill the hosts' disks to 90 %; returns once Prometheus shows it."""
    for name in hostnames:
        lab.admin.fill_disk(name, 6)
    wait_until(
        lambda: set(hostnames) <= set(lab.prometheus_query(USAGE, 85)),
        20,
        "Prometheus to see the full disks",
    )


def run(**params: object):
    state = disk_cleanup(DiskCleanupParams(**{**FAST, **params}), return_state=True)
    return state, state.result(raise_on_failure=False)


def cleanups(lab: Lab) -> list[dict]:
    return [j for j in lab.jobs() if "-delete" in j["command"]]


def test_a_dry_run_plans_and_an_unanswered_approval_cleans_nothing(fresh_lab):
    fill(fresh_lab, "lab-web-03", "lab-db-08")

    dry_state, dry = run(dry_run=True, batch_size=1)
    unanswered, report = run(approval=True, approval_timeout_seconds=1)

    assert dry_state.is_completed() and dry.outcome == "dry_run"
    assert dry.reason == "would clean up 2 hosts in 2 batches; nothing cleaned"
    assert sorted(h.hostname for h in dry.hosts if h.result == "planned") == [
        "lab-db-08",
        "lab-web-03",
    ]
    assert unanswered.is_failed() and report.outcome == "aborted"
    assert report.reason.startswith("not approved")
    assert cleanups(fresh_lab) == []


def test_a_disk_full_again_within_the_cooldown_is_not_cleaned_again_and_the_run_says_so(
    fresh_lab,
):
    fill(fresh_lab, "lab-web-03")
    first, cleaned = run()
    fill(fresh_lab, "lab-web-03")

    again, report = run()

    assert first.is_completed() and cleaned.verified == ["lab-web-03"]
    assert again.is_failed() and report.outcome == "needs_attention"
    assert "1 host within the cooldown" in report.reason
    assert report.needs_attention == ["lab-web-03"]
    assert len(cleanups(fresh_lab)) == 1


def test_a_host_cleaned_max_repeats_times_is_escalated_and_the_others_are_still_cleaned(
    fresh_lab,
):
    for _ in range(2):
        fill(fresh_lab, "lab-web-03")
        state, report = run(cooldown_minutes=0, max_repeats=2)
        assert report.verified == ["lab-web-03"], report.summary
    fill(fresh_lab, "lab-web-03", "lab-db-08")

    state, report = run(cooldown_minutes=0, max_repeats=2)

    assert state.is_failed() and report.outcome == "needs_attention"
    assert report.flapping == {"lab-web-03": 2}
    assert "flapping: lab-web-03 cleaned 2 times in 6 h; escalated, not cleaned" in report.reason
    assert report.verified == ["lab-db-08"]  # the other host of the run is still handled
    assert len(cleanups(fresh_lab)) == 3

    [event] = wait_until(
        lambda: flapping_events("lab-web-03", report.plan_digest),
        30,
        "the flapping event to reach the API",
    )
    assert event.payload["action"] == "cleanup" and event.payload["runbook"] == "disk-cleanup"


def test_the_fleet_budget_counts_cleanups_of_every_run(fresh_lab):
    fill(fresh_lab, "lab-web-03", "lab-db-08")

    first, one = run(selector={"hostnames": ["lab-web-03"]}, fleet_budget_hosts=1)
    second, other = run(selector={"hostnames": ["lab-db-08"]}, fleet_budget_hosts=1)

    assert first.is_completed() and one.verified == ["lab-web-03"]
    assert second.is_failed() and other.outcome == "failed"
    [refused] = other.hosts
    assert refused.hostname == "lab-db-08" and refused.result == "not touched"
    assert refused.detail.startswith("fleet budget of 1 host per 30 min reached")
    assert len(cleanups(fresh_lab)) == 1


def test_a_failing_cleanup_stops_the_rollout_at_the_failure_limit(fresh_lab):
    fill(fresh_lab, "lab-web-03", "lab-db-08")

    state, report = run(cleanup_command="echo cannot delete >&2; exit 3", batch_size=1)

    assert state.is_failed() and report.outcome == "failed"
    results = {h.hostname: (h.result, h.detail) for h in report.hosts}
    assert results["lab-db-08"][0] == "cleanup failed"
    assert "cannot delete" in results["lab-db-08"][1]
    assert results["lab-web-03"] == ("not touched", "rollout stopped after 1 failures")
    assert len(cleanups(fresh_lab)) == 0 and len(fresh_lab.jobs()) == 1


def test_usage_is_read_again_before_each_batch_inside_a_silence(fresh_lab, tmp_path):
    fill(fresh_lab, "lab-web-03", "lab-db-08")
    go = tmp_path / "go"
    # The first batch (lab-db-08, first of two hosts as full) waits for `go`; meanwhile
    # lab-web-03's disk is freed by someone else, so its batch finds it recovered.
    held = f"while [ ! -e {go} ]; do sleep 0.2; done; {CLEANUP}"
    box: dict = {}
    thread = threading.Thread(
        target=lambda: box.update(
            result=run(cleanup_command=held, batch_size=1, alertmanager="lab")
        )
    )
    thread.start()
    try:
        wait_until(lambda: fresh_lab.jobs(), 60, "the first batch's cleanup job")
        for old in (host_dir(fresh_lab.config.dir, "lab-web-03") / "var" / "log").glob("*.gz"):
            old.unlink()
        fresh_lab.admin.fill_disk("lab-web-03", 0.001)  # 1 MB: the lab reads the disk again
        wait_until(
            lambda: "lab-web-03" not in fresh_lab.prometheus_query(USAGE, 85),
            20,
            "Prometheus to see lab-web-03's disk freed",
        )
    finally:
        go.touch()
        thread.join(120)

    state, report = box["result"]
    assert state.is_completed(), report.summary
    results = {h.hostname: h.result for h in report.hosts}
    assert results == {"lab-db-08": "verified", "lab-web-03": "recovered before cleanup"}
    assert len(cleanups(fresh_lab)) == 1
    silences = requests.get(
        f"{fresh_lab.config.alertmanager_url}/api/v2/silences", timeout=5
    ).json()
    comment = f"opsflow disk-cleanup, plan {report.plan_digest}"
    [silence] = [s for s in silences if s["comment"] == comment]
    assert silence["status"]["state"] == "expired"
