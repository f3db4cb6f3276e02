"""The fleet budget's ledger and defaults, without a server."""

from __future__ import annotations

import json

import pytest

from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.tasks.fleet_budget import (
    MAX_LEDGER_CHARS,
    LedgerUnreadable,
    _compacted,
    _entries,
    _used,
)


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
    assert _entries([[100.0, 2, ["1", "2"]], [200.0, 3, ["3"]]], since=150) == [[200.0, 3, ["3"]]]
    assert _entries(None, since=0) == []


def test_hosts_are_counted_once_and_claims_without_ids_each_count():
    assert _used([[1.0, 2, ["1", "2"]], [2.0, 2, ["2", "3"]], [3.0, 2, []]]) == ({"1", "2", "3"}, 2)


@pytest.mark.parametrize(
    "value",
    [{"a": 1}, [[1, 2]], [["now", 1, []]], [[1.0, 1, ["1", "2"]]], [[1.0, True, []]], "5"],
)
def test_anything_but_a_list_of_time_hosts_and_ids_is_unreadable(value):
    with pytest.raises(LedgerUnreadable):
        _entries(value, since=0)


def test_compacting_stays_within_a_variable_and_never_counts_fewer_hosts():
    entries = [[float(t), 1, [f"host-{t:05d}"]] for t in range(1000)]
    compacted = _compacted([list(e) for e in entries])
    assert len(json.dumps(compacted)) <= MAX_LEDGER_CHARS
    ids, anonymous = _used(compacted)
    assert len(ids) + anonymous == 1000
    assert min(e[0] for e in compacted) >= 0 and max(e[0] for e in compacted) == 999.0
