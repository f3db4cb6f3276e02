"""The fleet budget's ledger and defaults, without a server."""

from __future__ import annotations

import pytest

from opsflow.tasks.fleet_budget import MAX_ENTRIES, LedgerUnreadable, _compacted, _entries
from opsflow.tasks.restart_plan import RestartPolicy


def test_the_default_budget_is_max_hosts_per_cooldown_and_each_can_be_set():
    assert RestartPolicy().fleet_budget.text == "fleet budget of 5 hosts per 30 min"
    assert RestartPolicy(max_hosts=8, cooldown_minutes=60).fleet_budget.text == (
        "fleet budget of 8 hosts per 60 min"
    )
    budget = RestartPolicy(
        fleet_budget_hosts=2, fleet_budget_minutes=120, fleet_budget_key="web"
    ).fleet_budget
    assert (budget.hosts, budget.minutes) == (2, 120)
    assert budget.variable == "opsflow-budget-restart-overloaded-hosts-web"


def test_a_budget_key_is_a_name_prefect_accepts():
    with pytest.raises(ValueError, match="fleet_budget_key"):
        RestartPolicy(fleet_budget_key="Web Servers")


def test_claims_older_than_the_window_are_not_counted():
    assert _entries([[100.0, 2], [200.0, 3]], since=150) == [[200.0, 3]]
    assert _entries(None, since=0) == []


@pytest.mark.parametrize(
    "value", [{"a": 1}, [[1, 2, 3]], [["now", 1]], [[1.0, -1]], [[1.0, True]], "5"]
)
def test_anything_but_a_list_of_time_and_hosts_is_unreadable(value):
    with pytest.raises(LedgerUnreadable):
        _entries(value, since=0)


def test_compacting_keeps_every_host_and_never_shortens_a_claim():
    entries = [[float(t), 1] for t in range(MAX_ENTRIES + 10)]
    compacted = _compacted([list(e) for e in entries])
    assert len(compacted) == MAX_ENTRIES
    assert sum(h for _, h in compacted) == len(entries)
    assert compacted[0][0] == 10.0  # the oldest ten now count until the eleventh's time
