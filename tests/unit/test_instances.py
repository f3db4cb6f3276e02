"""Joining Prometheus series to hosts: `instance` label to IP, IPv6 included."""

from __future__ import annotations

import math

import pytest

from opsflow.opsapi.prometheus import Sample
from opsflow.tasks.monitoring import Reading, instance_ip, only_instances, value_by_instance


@pytest.mark.parametrize(
    ("instance", "ip"),
    [
        ("10.0.0.7:9100", "10.0.0.7"),
        ("10.0.0.7", "10.0.0.7"),
        ("[::1]:9100", "::1"),
        ("[2001:db8::7]:9100", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),  # a bare IPv6 address: its last group is no port
        ("web-01:9100", "web-01"),
        ("web-01", "web-01"),
    ],
)
def test_instance_to_ip(instance, ip):
    assert instance_ip(instance) == ip


def test_several_series_of_one_instance_keep_the_highest_value():
    samples = [
        Sample({"instance": "10.0.0.1:9100"}, 1.0, 0.0),
        Sample({"instance": "10.0.0.1:9100"}, 3.0, 0.0),
        Sample({"instance": "[::1]:9100"}, 2.0, 0.0),
    ]

    assert value_by_instance(samples) == [
        Reading("10.0.0.1:9100", "10.0.0.1", 3.0),
        Reading("[::1]:9100", "::1", 2.0),
    ]


def test_a_nan_series_beside_a_number_gives_the_number_and_only_nans_give_nan():
    nan = float("nan")
    samples = [
        Sample({"instance": "a:9100"}, nan, 0.0),
        Sample({"instance": "a:9100"}, 2.0, 0.0),
        Sample({"instance": "a:9100"}, nan, 0.0),
        Sample({"instance": "b:9100"}, nan, 0.0),
    ]

    a, b = value_by_instance(samples)

    assert a.value == 2.0 and math.isnan(b.value)


def test_series_without_an_instance_label_are_left_out():
    assert value_by_instance([Sample({"job": "node"}, 1.0, 0.0)]) == []


@pytest.mark.parametrize(
    ("promql", "narrowed"),
    [
        ("node_load1", "node_load1{instance=~`\\[?(10\\.0\\.0\\.7|::1)\\]?(:[0-9]+)?`}"),
        (
            'node_load1{job="node",}',
            'node_load1{job="node", instance=~`\\[?(10\\.0\\.0\\.7|::1)\\]?(:[0-9]+)?`}',
        ),
        (
            'node_load1{job="a}b"}',
            'node_load1{job="a}b", instance=~`\\[?(10\\.0\\.0\\.7|::1)\\]?(:[0-9]+)?`}',
        ),
    ],
)
def test_a_plain_selector_is_narrowed_to_the_batch(promql, narrowed):
    assert only_instances(promql, ["10.0.0.7", "::1"]) == narrowed


@pytest.mark.parametrize(
    "promql",
    [
        "avg by (instance) (node_load5)",
        "node_load1 > 4",
        "node_load1 offset 5m",
        "rate(node_cpu_seconds_total[5m])",
        "node_load1[5m]",
    ],
)
def test_any_other_expression_is_asked_as_written(promql):
    assert only_instances(promql, ["10.0.0.7"]) == promql


def test_no_hosts_no_narrowing():
    assert only_instances("node_load1", []) == "node_load1"
