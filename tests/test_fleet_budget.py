"""The fleet budget: what all runs of a runbook do together, not what one run does.

Eight one-host alerts are eight runs of one host each; the blast-radius cap (per run) lets
every one through, the fleet budget (default: max_hosts per cooldown_minutes) counts them
all."""

from __future__ import annotations

import time

from prefect.variables import Variable

from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.tasks.fleet_budget import FleetBudget, budget_used, claim_hosts
from opsflow.tasks.host_locks import host_locks
from tests.test_restart_guarantees import FAST, run_in_thread

RESTART = "restart-overloaded-hosts"


def test_one_host_runs_at_once_restart_only_the_fleet_budget(fresh_lab):
    """Four runs of one host each, at once, with a cap (and so a budget) of 2: each run's cap
    sees one host; the budget sees four. (The eight-alert case with its default budget of 5,
    run by workers: test_alert_remediation.)"""
    hosts = [h["hostname"] for h in fresh_lab.admin.hosts()][:4]
    fresh_lab.overload(8.0, *hosts)

    runs = {
        name: run_in_thread(RestartPolicy(**FAST, max_hosts=2, selector={"hostnames": [name]}))
        for name in hosts
    }
    for thread, _ in runs.values():
        thread.join(300)

    restarted = fresh_lab.admin.restarts()
    assert len(restarted) == 2 and set(restarted.values()) == {1}, restarted
    for name, (_, box) in runs.items():
        state = box["state"]
        report = state.result(raise_on_failure=False)
        if name in restarted:
            assert state.is_completed() and report.verified == [name], state.message
        else:
            assert state.is_failed(), state.message
            assert "not touched: fleet budget of 2 hosts per 30 min reached" in state.message
            assert report.not_touched == [name]
            [host] = report.hosts
            assert host.detail == "fleet budget of 2 hosts per 30 min reached"
    assert budget_used(RestartPolicy(max_hosts=2).fleet_budget) == 2


def test_a_run_gets_what_is_left_of_the_budget_and_a_raised_budget_lets_more_through(fresh_lab):
    first = ["lab-web-01", "lab-db-02", "lab-web-03"]
    second = ["lab-db-04", "lab-web-05", "lab-db-06"]
    fresh_lab.overload(8.0, *first, *second)

    before = run_in_thread(RestartPolicy(**FAST, selector={"hostnames": first}))
    before[0].join(300)
    after = run_in_thread(RestartPolicy(**FAST, selector={"hostnames": second}))
    after[0].join(300)

    assert before[1]["state"].is_completed()
    report = after[1]["state"].result(raise_on_failure=False)
    assert len(report.verified) == 2 and len(report.not_touched) == 1, report.summary
    raised = run_in_thread(
        RestartPolicy(**FAST, selector={"hostnames": report.not_touched}, fleet_budget_hosts=6)
    )
    raised[0].join(300)
    assert raised[1]["state"].is_completed(), raised[1]["state"].message
    assert fresh_lab.admin.restarts() == dict.fromkeys(first + second, 1)


def test_budgets_are_per_key_count_hosts_once_and_claims_leave_the_window():
    budget = FleetBudget(RESTART, hosts=3, minutes=30, key="test-keys")
    other = FleetBudget(RESTART, hosts=3, minutes=30, key="test-keys-other")
    gone_by = [[time.time() - 31 * 60, 3, ["7", "8", "9"]]]
    Variable.set(budget.variable, gone_by, overwrite=True)

    assert claim_hosts(budget, ["1", "2"]).granted == ["1", "2"]
    claim = claim_hosts(budget, ["3", "4"])
    assert (claim.granted, claim.refused) == (["3"], ["4"])
    assert claim.reason == "fleet budget of 3 hosts per 30 min reached"
    # A rerun after a killed run claims the same hosts again: they cost nothing more.
    assert claim_hosts(budget, ["2", "3", "4"]).granted == ["2", "3"]
    assert claim_hosts(other, ["5", "6", "7"]).granted == ["5", "6", "7"]
    assert budget_used(budget) == 3


def test_an_unreadable_ledger_grants_nothing_and_says_how_to_reset_it():
    budget = FleetBudget(RESTART, hosts=5, minutes=30, key="test-unreadable")
    Variable.set(budget.variable, {"edited": "by hand"}, overwrite=True)

    claim = claim_hosts(budget, ["1"])

    assert claim.granted == [] and claim.refused == ["1"]
    assert f"variable {budget.variable!r} is unreadable" in claim.reason
    assert "delete it to start the budget afresh" in claim.reason


def test_a_budget_held_by_another_run_is_waited_for_then_refused_not_overspent(monkeypatch):
    import opsflow.tasks.fleet_budget as fleet_budget

    monkeypatch.setattr(fleet_budget, "LOCK_WAIT_SECONDS", 1.0)
    budget = FleetBudget(RESTART, hosts=5, minutes=30, key="test-held")

    with host_locks([f"budget-{budget.name}"]) as (ours, _):
        assert ours
        claim = claim_hosts(budget, ["1"])

    assert claim.granted == [] and "busy" in claim.reason
    assert claim_hosts(budget, ["1"]).granted == ["1"]  # free again
