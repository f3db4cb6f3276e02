"""The rollout plan: who is on the bad side, selected, not cooling down, capped, batched."""

from __future__ import annotations

from opsflow.opsapi.models import Host
from opsflow.tasks.monitoring import Reading
from opsflow.tasks.rollout_plan import build_plan


def hosts(*names_and_ips: tuple[str, str]) -> list[Host]:
    return [Host(id=str(n), hostname=h, ip=ip) for n, (h, ip) in enumerate(names_and_ips, 1)]


def values(**by_ip: float) -> list[Reading]:
    ips = [(ip.replace("_", "."), value) for ip, value in by_ip.items()]
    return [Reading(f"{ip}:9100", ip, value) for ip, value in ips]


FLEET = hosts(("web-1", "10.0.0.1"), ("web-2", "10.0.0.2"), ("db-1", "10.0.0.3"))
ALL_IPS = {h.ip for h in FLEET}


def test_hosts_over_the_threshold_are_planned_worst_first_in_batches():
    plan = build_plan(
        values(**{"10_0_0_1": 5.0, "10_0_0_2": 9.0, "10_0_0_3": 1.0}), FLEET, ALL_IPS, 4, 5, 1
    )

    assert [c.hostname for c in plan.candidates] == ["web-2", "web-1"]
    assert [[c.hostname for c in b] for b in plan.batches] == [["web-2"], ["web-1"]]
    assert plan.over_threshold == 2 and not plan.blast_radius_exceeded


def test_a_host_exactly_at_the_threshold_is_not_over_it():
    plan = build_plan(values(**{"10_0_0_1": 4.0}), FLEET, ALL_IPS, 4, 5, 2)

    assert plan.candidates == []


def test_more_hosts_over_the_threshold_than_the_cap_plans_nothing():
    plan = build_plan(
        values(**{"10_0_0_1": 5.0, "10_0_0_2": 9.0, "10_0_0_3": 7.0}), FLEET, ALL_IPS, 4, 2, 2
    )

    assert plan.blast_radius_exceeded and plan.batches == []
    assert plan.over_threshold == 3


def test_cooling_down_hosts_count_toward_the_cap_but_are_not_restarted():
    plan = build_plan(
        values(**{"10_0_0_1": 5.0, "10_0_0_2": 9.0}),
        FLEET,
        ALL_IPS,
        4,
        5,
        2,
        recent={"2": 3.25},
    )

    assert [c.hostname for c in plan.candidates] == ["web-1"]
    assert plan.cooling_down == {"web-2": 3.2}
    assert plan.over_threshold == 2


def test_hosts_without_data_and_series_without_a_host_are_named_never_planned():
    plan = build_plan(values(**{"10_0_0_1": 5.0, "10_9_9_9": 50.0}), FLEET, ALL_IPS, 4, 5, 2)

    assert [c.hostname for c in plan.candidates] == ["web-1"]
    assert plan.hosts_without_data == ["db-1", "web-2"]
    assert plan.series_without_host == ["10.9.9.9:9100"]


def test_an_unselected_host_is_neither_planned_nor_an_unknown_series():
    selected = [h for h in FLEET if h.hostname.startswith("db")]

    plan = build_plan(values(**{"10_0_0_1": 5.0}), selected, ALL_IPS, 4, 5, 2)

    assert plan.candidates == [] and plan.series_without_host == []


def test_the_digest_changes_with_the_hosts_or_their_order():
    a = build_plan(values(**{"10_0_0_1": 5.0, "10_0_0_2": 9.0}), FLEET, ALL_IPS, 4, 5, 1)
    b = build_plan(values(**{"10_0_0_1": 9.5, "10_0_0_2": 9.0}), FLEET, ALL_IPS, 4, 5, 1)
    c = build_plan(values(**{"10_0_0_1": 5.5, "10_0_0_2": 9.0}), FLEET, ALL_IPS, 4, 5, 1)

    assert a.digest != b.digest  # another order
    assert a.digest == c.digest  # the same hosts in the same order


def test_without_removes_hosts_and_rebatches():
    plan = build_plan(
        values(**{"10_0_0_1": 5.0, "10_0_0_2": 9.0, "10_0_0_3": 7.0}), FLEET, ALL_IPS, 4, 5, 2
    )

    rest = plan.without({"2"}, 2)

    assert [[c.hostname for c in b] for b in rest.batches] == [["db-1", "web-1"]]


def test_a_host_restarted_max_repeats_times_in_the_window_is_flapping_not_planned():
    plan = build_plan(
        values(**{"10_0_0_1": 5.0, "10_0_0_2": 9.0, "10_0_0_3": 6.0}),
        FLEET,
        ALL_IPS,
        4,
        5,
        2,
        recent={"2": 1.0},
        repeats={"2": 3, "1": 2},
        max_repeats=3,
        repeat_window_minutes=360,
    )

    assert [c.hostname for c in plan.candidates] == ["db-1", "web-1"]  # 2 repeats: still on
    assert plan.flapping == {"web-2": 3} and plan.cooling_down == {}  # flapping comes first
    assert plan.over_threshold == 3
    assert (
        plan.flapping_text == "flapping: web-2 restarted 3 times in 6 h; escalated, not restarted"
    )


def test_a_signal_whose_bad_side_is_below_plans_the_lowest_first():
    free = values(**{"10_0_0_1": 5.0, "10_0_0_2": 2.0, "10_0_0_3": 50.0})

    plan = build_plan(free, FLEET, ALL_IPS, 10, 5, 2, side="below")

    assert [c.hostname for c in plan.candidates] == ["web-2", "web-1"]
    assert plan.over_threshold_text == "2 of 3 hosts under 10"
