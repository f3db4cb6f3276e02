"""Joining Prometheus series to hosts: `instance` label to IP, IPv6 included."""

from __future__ import annotations

import pandas as pd
import pytest

from opsflow.tasks.monitoring import instance_ip, only_instances, value_by_instance


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
    frame = pd.DataFrame(
        {"instance": ["10.0.0.1:9100", "10.0.0.1:9100", "[::1]:9100"], "value": [1.0, 3.0, 2.0]}
    )

    table = value_by_instance(frame)

    assert table.to_dict("records") == [
        {"instance": "10.0.0.1:9100", "ip": "10.0.0.1", "value": 3.0},
        {"instance": "[::1]:9100", "ip": "::1", "value": 2.0},
    ]


def test_series_without_an_instance_label_give_an_empty_table():
    assert value_by_instance(pd.DataFrame({"value": [1.0]})).empty


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
