"""Selecting hosts: a typo is refused with the closest names, and nothing matched is said so."""

from __future__ import annotations

import doctest

import pytest

import opsflow.tasks.host_selection
from opsflow.flows.cli.options import say_in_flags
from opsflow.flows.runbooks.load_report import LoadReport
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.opsapi import ConfigurationError, UnknownHosts
from opsflow.opsapi.models import Host, HostSelector
from opsflow.tasks.host_selection import (
    HostSelection,
    check_named_hosts,
    closest,
    describe,
    select,
)
from opsflow.tasks.rollout_report import FAILED_OUTCOMES, RolloutReport
from opsflow.tasks.runbook import NOTHING_MATCHED, final_state


def fleet(count: int = 40) -> list[Host]:
    """`peer-001` ... tagged web (odd) or db (even), like a real inventory."""
    return [
        Host(
            id=str(n),
            hostname=f"peer-{n:03d}",
            ip=f"10.0.{n // 250}.{n % 250 + 1}",
            tags=["web" if n % 2 else "db"],
        )
        for n in range(1, count + 1)
    ]


def test_a_host_name_with_a_typo_is_refused_with_the_closest_names():
    with pytest.raises(UnknownHosts) as refused:
        select(fleet(), HostSelector(hostnames=["peer-0001"]))

    message = str(refused.value)
    assert message.startswith("selector.hostnames: 'peer-0001' is not in the inventory of 40 hosts")
    assert "(did you mean peer-001" in message
    assert message.endswith("; nothing was done")
    assert "\n" not in message


def test_a_numbered_host_is_suggested_first_however_its_number_is_padded():
    names = [f"lab-{'web' if n % 2 else 'db'}-{n:02d}" for n in range(1, 41)]

    for typo, meant in [("lab-web-1", "lab-web-01"), ("lab-web-001", "lab-web-01"),
                        ("lab-db-2", "lab-db-02"), ("lab-wbe-03", "lab-web-03")]:  # fmt: skip
        assert closest(typo, names)[0] == meant, typo


def test_an_unknown_host_is_a_configuration_error_so_it_fails_a_run_without_a_traceback():
    assert issubclass(UnknownHosts, ConfigurationError)


def test_every_unknown_host_is_named_and_one_without_a_close_name_says_so():
    with pytest.raises(UnknownHosts) as refused:
        check_named_hosts(
            HostSelector(hostnames=["peer-001", "peer-0002", "zzz"]),
            [h.hostname for h in fleet()],
        )

    message = str(refused.value)
    assert "'peer-0002' (did you mean peer-002" in message
    assert "and 'zzz' (no similar name) are not in the inventory of 40 hosts" in message
    assert "'peer-001'" not in message  # the known one is not named


def test_known_host_names_pass_and_select_exactly_those_hosts():
    picked = select(fleet(), HostSelector(hostnames=["peer-001", "peer-004"]))

    assert [h.hostname for h in picked.selected] == ["peer-001", "peer-004"]
    assert picked.counted == "40 hosts listed, 2 selected by hosts peer-001 and peer-004"


def test_a_tag_no_host_has_selects_none_and_the_count_says_so():
    picked = select(fleet(), HostSelector(tags=["nosuchtag"]))

    assert picked.selected == []
    assert picked.counted == "40 hosts listed, 0 selected by tag nosuchtag"
    assert picked.nothing_matched == (
        "tag nosuchtag selected none of the 40 hosts listed; no host is tagged nosuchtag"
    )


def test_a_misspelt_tag_gets_the_closest_tag():
    picked = select(fleet(), HostSelector(tags=["wbe"]))

    assert picked.nothing_matched.endswith("no host is tagged wbe (did you mean web?)")


def test_tags_that_exist_but_never_together_name_no_missing_tag():
    picked = select(fleet(), HostSelector(tags=["web", "db"]))

    assert picked.nothing_matched == "tags web and db selected none of the 40 hosts listed"


def test_a_pattern_that_matches_nothing_is_named_in_the_count():
    picked = select(fleet(), HostSelector(hostname_pattern="nope-*"))

    assert picked.counted == "40 hosts listed, 0 selected by hostname pattern 'nope-*'"


def test_no_selector_selects_every_host_and_an_empty_inventory_is_nothing_matched():
    assert select(fleet(), HostSelector()).counted == "40 hosts listed, 40 selected"
    assert select([], HostSelector()).nothing_matched == "the inventory is empty: 0 hosts listed"


def test_an_empty_host_list_names_no_host_and_refuses_none():
    picked = select(fleet(), HostSelector(hostnames=[]))

    assert picked.selected == []
    assert describe(HostSelector(hostnames=[])) == "an empty host list"


def test_the_refusal_is_said_in_flags_on_the_command_line():
    said = say_in_flags("selector.hostnames: 'peer-0001' is not in the inventory", RestartPolicy)

    assert said == "--host: 'peer-0001' is not in the inventory"


def test_nothing_matched_is_an_outcome_of_its_own_not_nothing_to_do():
    report = RolloutReport(
        outcome="nothing_matched",
        reason="tag nosuchtag selected none of the 40 hosts listed",
        plan_digest="ab",
    )

    assert report.summary == "nothing matched: tag nosuchtag selected none of the 40 hosts listed"
    assert "nothing_matched" not in FAILED_OUTCOMES  # not an aborted rollout: no such event


def test_a_run_that_matched_nothing_ends_failed_under_its_own_name():
    report = LoadReport(
        outcome="nothing_matched",
        reason="tag wbe selected none of the 40 hosts listed",
        hosts=0,
        critical=0,
        warning=0,
        ok=0,
        no_data=0,
    )

    state = final_state(report, failed=True, name=NOTHING_MATCHED)

    assert state.is_failed() and state.name == "NothingMatched"
    assert state.message == "nothing matched: tag wbe selected none of the 40 hosts listed"


def test_a_selection_survives_the_trip_through_prefects_results():
    picked = select(fleet(3), HostSelector(tags=["web"]))

    assert HostSelection.model_validate_json(picked.model_dump_json()) == picked


def test_the_module_examples_hold():
    failed, attempted = doctest.testmod(
        opsflow.tasks.host_selection, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )

    assert attempted and not failed
