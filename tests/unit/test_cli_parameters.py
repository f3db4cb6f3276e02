"""How `opsflow run NAME --flag value` becomes a runbook's parameters."""

from __future__ import annotations

import inspect

import pytest

from opsflow.flows.cli.options import (
    catalog_option_specs,
    option_specs,
    say_in_flags,
    values_from_flags,
)
from opsflow.flows.cli.specs import load_specs, signature_of
from opsflow.flows.runbooks.register_hosts import RegisterHostsParams
from opsflow.flows.runbooks.registry import load_runbook
from opsflow.flows.runbooks.remediate import RemediateParams
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy


def flags(model) -> set[str]:
    return {p.default.param_decls[0] for p in signature_of(option_specs(model)).parameters.values()}


def test_every_field_has_a_flag_blocks_by_name_and_the_selector_as_tag_and_pattern():
    shown = flags(RestartPolicy)

    assert {"--threshold", "--dry-run", "--tag", "--hostname-pattern"} <= shown
    assert {"--platform-block", "--prometheus-block", "--alertmanager-block"} <= shown
    assert "--selector" not in shown and "--platform" not in shown


def test_a_hostname_pattern_alone_is_a_selector():
    values = values_from_flags(RestartPolicy, {"tag": None, "hostname_pattern": "web-*"})

    assert values == {"selector": {"tags": [], "hostname_pattern": "web-*"}}


def test_repeated_tags_and_block_names_map_to_their_fields():
    values = values_from_flags(
        RestartPolicy, {"tag": ("web", "prod"), "platform_block": "prod", "threshold": 6.0}
    )

    assert values == {
        "selector": {"tags": ["web", "prod"], "hostname_pattern": None},
        "platform": "prod",
        "threshold": 6.0,
    }


def test_flags_left_out_leave_the_models_defaults():
    given = {name: None for name in inspect.signature(lambda: None).parameters}

    assert values_from_flags(RestartPolicy, given) == {}


def test_a_json_field_is_parsed():
    values = values_from_flags(
        RegisterHostsParams, {"rows": '[{"hostname": "a", "ip": "10.0.0.1"}]'}
    )

    assert values == {"rows": [{"hostname": "a", "ip": "10.0.0.1"}]}


def test_messages_about_fields_are_said_in_flags():
    message = "recovery_threshold (3) must not be above threshold (2): lower recovery_threshold"

    assert say_in_flags(message, RestartPolicy) == (
        "--recovery-threshold (3) must not be above --threshold (2): lower --recovery-threshold"
    )
    assert say_in_flags("load over the threshold", RestartPolicy) == "load over the threshold"


def test_the_lab_commands_named_in_opsflows_help_are_the_labs():
    from opsflow.flows.cli.main import LAB_COMMANDS
    from opsflow.lab.cli import app

    lab = {c.name for c in app.registered_commands if not c.hidden}

    assert set(LAB_COMMANDS) == lab


def test_the_catalog_is_the_registry():
    from opsflow.flows.runbooks.catalog import CATALOG
    from opsflow.flows.runbooks.registry import load_runbook

    for name, entry in CATALOG.items():
        runbook = load_runbook(name)
        assert runbook.flow.name == name
        assert runbook.flow.description.splitlines()[0] == entry.summary
        assert list(runbook.flow.parameters.properties) == [entry.param_name]


def test_the_command_lines_specs_are_the_models():
    """`opsflow run NAME` reads its options from a file so that `--help` imports no runbook;
    after a parameter model changes: python -m opsflow.flows.cli.options"""
    assert load_specs() == catalog_option_specs(), "stale: python -m opsflow.flows.cli.options"


def test_a_flag_on_by_default_can_be_turned_off():
    shown = flags(RemediateParams)

    assert "--dry-run/--no-dry-run" in shown


EARLY_REFUSALS = [
    ("restart-overloaded-hosts", "threshold", float("inf")),
    ("restart-overloaded-hosts", "batch_size", 0),
    ("restart-overloaded-hosts", "service", "Bad!"),
    ("restart-overloaded-hosts", "query", ""),
    ("remediate", "side", "up"),
    ("run-command", "command", "x" * 10_001),
]


@pytest.mark.parametrize(("runbook", "field", "value"), EARLY_REFUSALS)
def test_a_value_refused_before_the_import_reads_as_the_model_refuses_it(runbook, field, value):
    """The command line refuses these from the option specs (no Prefect, no runbook imported):
    in the model's own words, so nothing reads differently once the runbook is imported."""
    from pydantic import ValidationError

    from opsflow.flows.cli.specs import load_specs, out_of_bounds

    entry = load_runbook(runbook)
    early = out_of_bounds(load_specs()[runbook]["options"], {field: value})
    with pytest.raises(ValidationError) as refused:
        entry.params.model_validate({field: value})
    [error] = [e for e in refused.value.errors() if e["loc"] == (field,)]
    assert early == f"invalid --{field.replace('_', '-')}: {error['msg']}"


ORDER_REFUSALS = [
    ("restart-overloaded-hosts", {"threshold": 2.0, "recovery_threshold": 3.0}),
    ("load-report", {"warning": 2.0}),  # --critical left at its default, 1
    ("disk-cleanup", {"threshold_percent": 80.0, "target_percent": 85.0}),
]


@pytest.mark.parametrize(("runbook", "given"), ORDER_REFUSALS)
def test_a_value_above_its_upper_one_is_refused_before_the_import_as_after(runbook, given):
    """`--warning 2` with --critical at 1 is refused from the option specs, in the words the
    model's refusal reaches the operator in once the runbook is imported."""
    from opsflow.flows.cli.adhoc import Refused, check_without_server
    from opsflow.flows.cli.specs import load_specs, out_of_bounds

    options = load_specs()[runbook]["options"]
    typed = {**{option["name"]: option["default"] for option in options}, **given}  # as typer
    entry = load_runbook(runbook)
    with pytest.raises(Refused) as refused:
        check_without_server(entry.params, given)

    assert out_of_bounds(options, typed) == str(refused.value)
    assert out_of_bounds(options, {**typed, **dict.fromkeys(given, 1.0)}) is None


@pytest.mark.parametrize(
    ("chosen", "refused"),
    [
        ({}, True),
        ({"hostname_pattern": ""}, True),
        ({"tag": ["web"]}, False),
        ({"hostname_pattern": "web-*"}, False),
        ({"host": ["web-01"]}, False),
        ({"all_hosts": True}, False),
    ],
)
def test_a_command_for_no_chosen_host_is_refused_before_the_import_as_after(chosen, refused):
    """`opsflow run run-command --command uptime` with no selector and no --all-hosts."""
    from opsflow.flows.cli.adhoc import Refused, check_without_server
    from opsflow.flows.cli.options import values_from_flags
    from opsflow.flows.cli.specs import load_specs, out_of_bounds

    options = load_specs()["run-command"]["options"]
    typed = {**{option["name"]: option["default"] for option in options}, "command": "uptime"}
    entry = load_runbook("run-command")
    values = values_from_flags(entry.params, {"command": "uptime", **chosen})
    late = None
    try:
        check_without_server(entry.params, values)
    except Refused as exc:
        late = str(exc)

    assert out_of_bounds(options, {**typed, **chosen}) == late
    assert (late is not None) is refused


@pytest.mark.parametrize("path", ["/nonexistent/hosts.csv", "/", "~nosuchuser-opsflow/hosts.csv"])
def test_a_file_that_is_not_there_is_refused_before_the_import_as_after(path, tmp_path):
    from opsflow.flows.cli.adhoc import Refused, check_without_server
    from opsflow.flows.cli.specs import load_specs, out_of_bounds

    options = load_specs()["register-hosts"]["options"]
    entry = load_runbook("register-hosts")
    with pytest.raises(Refused) as refused:
        check_without_server(entry.params, {"csv_path": path})
    there = tmp_path / "hosts.csv"
    there.write_text("hostname,ip\nweb-01,10.0.0.1\n")

    assert out_of_bounds(options, {"csv_path": path}) == str(refused.value)
    assert out_of_bounds(options, {"csv_path": str(there)}) is None
