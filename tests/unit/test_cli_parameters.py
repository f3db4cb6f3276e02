"""How `opsflow run NAME --flag value` becomes a runbook's parameters."""

from __future__ import annotations

import inspect

from opsflow.flows.cli import _signature, _values
from opsflow.flows.register_hosts import RegisterHostsParams
from opsflow.tasks.restart_plan import RestartPolicy


def flags(model) -> set[str]:
    return {p.default.param_decls[0] for p in _signature(model).parameters.values()}


def test_every_field_has_a_flag_blocks_by_name_and_the_selector_as_tag_and_pattern():
    shown = flags(RestartPolicy)

    assert {"--threshold", "--dry-run", "--tag", "--hostname-pattern"} <= shown
    assert {"--platform-block", "--prometheus-block", "--alertmanager-block"} <= shown
    assert "--selector" not in shown and "--platform" not in shown


def test_a_hostname_pattern_alone_is_a_selector():
    values = _values(RestartPolicy, {"tag": None, "hostname_pattern": "web-*"})

    assert values == {"selector": {"tags": [], "hostname_pattern": "web-*"}}


def test_repeated_tags_and_block_names_map_to_their_fields():
    values = _values(
        RestartPolicy, {"tag": ("web", "prod"), "platform_block": "prod", "threshold": 6.0}
    )

    assert values == {
        "selector": {"tags": ["web", "prod"], "hostname_pattern": None},
        "platform": "prod",
        "threshold": 6.0,
    }


def test_flags_left_out_leave_the_models_defaults():
    given = {name: None for name in inspect.signature(lambda: None).parameters}

    assert _values(RestartPolicy, given) == {}


def test_a_json_field_is_parsed():
    values = _values(RegisterHostsParams, {"rows": '[{"hostname": "a", "ip": "10.0.0.1"}]'})

    assert values == {"rows": [{"hostname": "a", "ip": "10.0.0.1"}]}
