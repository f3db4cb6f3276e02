"""Parameter models refuse what an operator did not mean: unknown keys, crossed thresholds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from opsflow.flows.runbooks.disk_cleanup import DiskCleanupParams
from opsflow.flows.runbooks.load_report import LoadReportParams
from opsflow.flows.runbooks.register_hosts import RegisterHostsParams
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.flows.runbooks.run_command import RunCommandParams


@pytest.mark.parametrize(
    ("model", "given", "says"),
    [
        (RestartPolicy, {"dryrun": True}, "unknown field 'dryrun' — did you mean 'dry_run'?"),
        (RestartPolicy, {"treshold": 3}, "unknown field 'treshold' — did you mean 'threshold'?"),
        (
            RestartPolicy,
            {"selector": {"tag": ["web"]}},
            "unknown field 'tag' — did you mean 'tags'?",
        ),
        (LoadReportParams, {"critcal": 2}, "did you mean 'critical'?"),
        (DiskCleanupParams, {"treshold_percent": 90}, "did you mean 'threshold_percent'?"),
        (RegisterHostsParams, {"csv": "x.csv"}, "unknown field 'csv'"),
        (RunCommandParams, {"command": "uptime", "all_hosts": True, "hosts": ["a"]}, "'hosts'"),
    ],
)
def test_unknown_keys_are_refused_naming_the_closest_field(model, given, says):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(given)

    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("model", "given", "says"),
    [
        (
            RestartPolicy,
            {"threshold": 2, "recovery_threshold": 3},
            "recovery_threshold (3) must not be above threshold (2)",
        ),
        (
            LoadReportParams,
            {"warning": 2, "critical": 1},
            "warning (2) must not be above critical (1)",
        ),
        (
            DiskCleanupParams,
            {"threshold_percent": 80, "target_percent": 85},
            "target_percent (85) must not be above threshold_percent (80)",
        ),
    ],
)
def test_a_lower_bound_above_its_upper_bound_is_refused(model, given, says):
    with pytest.raises(ValidationError, match=says.replace("(", r"\(").replace(")", r"\)")):
        model.model_validate(given)


def test_a_bad_allowlist_pattern_is_refused_up_front():
    with pytest.raises(ValidationError, match=r"allowlist pattern '\(uptime' is not a valid"):
        RunCommandParams(command="uptime", all_hosts=True, allowlist=["(uptime"])


def test_defaults_name_no_block_so_a_user_is_never_pointed_at_the_lab():
    for model in (RestartPolicy, LoadReportParams, DiskCleanupParams, RegisterHostsParams):
        fields = model.model_fields
        assert fields["platform"].default is None
        assert "lab" not in str([f.default for f in fields.values()])
