"""The runbook made without code, as parameters: its presets are the shipped runbooks, a new one
is a dry run, and whatever is incomplete, contradictory or outside the allowlist is refused
before anything runs, in one line naming the field."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from opsflow.flows.runbooks.disk_cleanup import DiskCleanupParams
from opsflow.flows.runbooks.remediate import PRESETS, PresetName, RemediateParams
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.opsapi.errors import ConfigurationError
from opsflow.opsapi.redaction import register_secret

ROOT = Path(__file__).parents[2]
SHARED = ("max_hosts", "batch_size", "job_timeout_seconds")


@pytest.mark.parametrize("shipped", [RestartPolicy(), DiskCleanupParams()], ids=type)
def test_a_shipped_runbook_is_its_preset_field_for_field(shipped) -> None:
    made = RemediateParams(preset=shipped.rollout.runbook)

    assert made.rollout == shipped.rollout
    assert [getattr(made, f) for f in SHARED] == [getattr(shipped, f) for f in SHARED]
    assert made.fleet_budget == shipped.fleet_budget  # one budget for both


def test_every_preset_can_be_chosen_and_builds() -> None:
    assert set(typing.get_args(PresetName)) == set(PRESETS)
    for name in PRESETS:
        assert RemediateParams(preset=name).rollout.runbook == PRESETS[name]["name"]


def test_a_new_runbook_is_a_dry_run_unless_told_otherwise() -> None:
    assert RemediateParams(preset="disk-cleanup").dry_run is True
    assert RemediateParams(preset="disk-cleanup", dry_run=False).dry_run is False


def test_a_field_given_overrides_the_preset_and_an_empty_one_keeps_it() -> None:
    made = RemediateParams(preset="disk-cleanup", threshold=90, query=None, name="clean-logs")

    assert made.rollout.signal.threshold == 90
    assert made.rollout.signal.query == DiskCleanupParams().usage_query
    assert made.fleet_budget.runbook == "clean-logs"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"preset": "disk-cleanup", "comand": "ls"}, "did you mean 'command'"),
        ({"preset": "nosuch"}, "Input should be 'restart-overloaded-hosts'"),
        ({"preset": "disk-cleanup", "allowlist": ["("]}, "is not a valid regular expression"),
        ({"preset": "disk-cleanup", "name": "Clean Logs"}, "String should match pattern"),
    ],
)
def test_a_bad_field_is_refused_when_the_model_is_built(given, message) -> None:
    with pytest.raises(ValidationError) as refused:
        RemediateParams(**given)

    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "query is missing: give query"),
        ({"query": "up", "threshold": 1, "recovery": 0}, "command is missing"),
        (
            {"preset": "disk-cleanup", "recovery": 95},
            "recovery (95) must not be above threshold (85)",
        ),
        (
            {"preset": "disk-cleanup", "side": "below"},
            "recovery (80) must not be below threshold (85)",
        ),
        ({"preset": "disk-cleanup", "allowlist": ["find .*"]}, "uses shell syntax"),
        (
            {"preset": "restart-overloaded-hosts", "allowlist": [r"systemctl restart \w+"]},
            "health_command 'systemctl is-active nginx' matches no allowlist pattern",
        ),
    ],
)
def test_an_incomplete_contradictory_or_disallowed_runbook_builds_no_rollout(given, message):
    made = RemediateParams(**given)  # a deployment's run may complete it: not refused yet

    with pytest.raises(ConfigurationError) as refused:
        made.checked()

    assert message in str(refused.value)


def test_a_blank_is_not_given_with_or_without_a_preset() -> None:
    assert RemediateParams(name="", side=None).name == "remediate"
    assert RemediateParams(preset="disk-cleanup", name="").name == "disk-cleanup"


def test_a_password_typed_into_the_command_is_not_what_prefect_stores() -> None:
    register_secret("hunter2-secret")
    made = RemediateParams(preset="disk-cleanup", command="cleanup --password hunter2-secret")

    stored = made.model_dump_json()

    assert "hunter2-secret" not in stored and "cleanup --password" in stored
    assert made.rollout.action.command.endswith("hunter2-secret")  # what runs is whole


def test_the_runbook_made_in_prefect_yaml_is_valid() -> None:
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    made = [d for d in deployments if d["entrypoint"].endswith("remediate:remediate")]
    [in_yaml] = [d for d in made if "parameters" in d]  # the other is the form's

    assert len(made) == 2
    assert RemediateParams(**in_yaml["parameters"]["params"]).rollout.runbook == "clean-logs"
