"""Runbook: a runbook made without code. The signal that picks the hosts, the command run on
them, an optional health check and the recovery that verifies it, all as parameters.

A team makes "restart stuck consumers" or "clean logs when disk is over 85 %" from the Prefect
UI's run form, `prefect.yaml` or the command line, with no Python: it is a rollout on the same
engine as the shipped runbooks (`opsflow.flows.runbooks.rollout`), so it has every guarantee they
have (no data, no action; the blast-radius cap; a plan with a digest; approval; the per-host
locks; the cooldown and flapping read from the backend's job history; the fleet budget; a
silence; verification; a report, events and a notification). The command is guarded like
`run-command`'s: an optional allowlist checked before anything starts, and a password typed into
it masked everywhere. A new runbook's first run is a dry run: `dry_run` defaults to true, so
its plan is seen before it acts; set it false (`--no-dry-run`) once the plan is right.

The shipped signal runbooks are its presets: ``preset="disk-cleanup"`` is disk-cleanup, field
for field (a test holds them equal); any field given overrides the preset's, one left empty
keeps it.

Example:
    >>> RemediateParams(preset="disk-cleanup", threshold=90).rollout.signal.threshold
    90.0
    >>> RemediateParams(preset="disk-cleanup").dry_run
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from prefect.states import State
from pydantic import ConfigDict, Field, field_serializer, field_validator, model_validator

from opsflow.flows.runbooks.disk_cleanup import DiskCleanupParams
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
from opsflow.flows.runbooks.rollout import roll_out
from opsflow.flows.runbooks.runbook_flow import runbook
from opsflow.opsapi.errors import CommandNotAllowed, ConfigurationError
from opsflow.opsapi.redaction import mask_secrets
from opsflow.tasks.command_policy import check_command, check_patterns
from opsflow.tasks.fleet_budget import FleetBudget
from opsflow.tasks.rollout_policy import Action, RemediationPolicy, Rollout, Signal
from opsflow.tasks.runbook import with_deployment_defaults

PresetName = Literal["restart-overloaded-hosts", "disk-cleanup", "restart-stuck-consumers"]
NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
FORM_FIRST = (
    *("preset", "name", "signal_name", "query", "threshold", "recovery", "side"),
    *("action_name", "action_done", "action_verb", "command", "health_command", "allowlist"),
    *("dry_run", "platform", "prometheus", "selector"),
)
REQUIRED = {
    "query": "the PromQL that gives one value per instance",
    "threshold": "the value past which a host is acted on",
    "recovery": "the value past which an acted-on host counts as fixed",
    "command": "what runs on each host",
}


def preset_of(policy: RestartPolicy | DiskCleanupParams) -> dict[str, Any]:
    """A shipped runbook's defaults as this runbook's fields."""
    rollout = policy.rollout
    signal, action = rollout.signal, rollout.action
    assert signal is not None  # both answer a signal
    return {
        "name": rollout.runbook,
        "signal_name": signal.name,
        "query": signal.query,
        "threshold": signal.threshold,
        "recovery": signal.recovery,
        "side": signal.side,
        "freshness_query": signal.freshness_query or "",
        "action_name": action.name,
        "action_done": action.done,
        "action_verb": action.verb,
        "command": action.command,
        "health_command": action.health_command or "",
        "max_hosts": policy.max_hosts,
        "batch_size": policy.batch_size,
        "job_timeout_seconds": policy.job_timeout_seconds,
    }


PRESETS: dict[str, dict[str, Any]] = {
    "restart-overloaded-hosts": preset_of(RestartPolicy()),
    "disk-cleanup": preset_of(DiskCleanupParams()),
    "restart-stuck-consumers": {
        "name": "restart-stuck-consumers",
        "signal_name": "consumer lag",
        "query": "max by (instance) (kafka_consumergroup_lag)",
        "threshold": 10_000,
        "recovery": 1_000,
        "action_name": "restart",
        "action_done": "restarted",
        "command": "systemctl restart queue-consumer",
        "health_command": "systemctl is-active queue-consumer",
    },
}


def _own_fields_first(schema: dict[str, Any]) -> None:
    """The run form shows what makes this runbook (preset, signal, command) before the knobs
    every runbook shares."""
    properties = schema["properties"]
    first = [name for name in FORM_FIRST if name in properties]
    schema["properties"] = {name: properties[name] for name in [*first, *properties]}


class RemediateParams(RemediationPolicy):
    """Which hosts are bad (a signal), what fixes them (a command), how to tell it did."""

    model_config = ConfigDict(json_schema_extra=_own_fields_first)
    runbook: ClassVar[str] = "remediate"

    preset: PresetName | None = Field(
        default=None,
        description="Start from this preset: a field given overrides it, one left empty keeps it.",
    )
    name: str = Field(
        default="remediate",
        pattern=NAME,
        description="Your runbook's name, for its reports, events, notifications and fleet "
        "budget (restart-stuck-consumers).",
    )
    signal_name: str = Field(
        default="value", max_length=64, description="What the values are (consumer lag)."
    )
    query: str = Field(default="", description="PromQL giving one value per instance.")
    threshold: float | None = Field(
        default=None, description="Act on hosts on the bad side of this value."
    )
    recovery: float | None = Field(
        default=None, description="An acted-on host is fixed once on the good side of this."
    )
    side: Literal["above", "below"] = Field(
        default="above", description="Which side of the threshold is bad: above or below."
    )
    freshness_query: str = Field(
        default="",
        description="A plain selector of the same series whose sample time shows the data's "
        "age, when the query is computed. Empty: the query's own.",
    )
    action_name: str = Field(
        default="action",
        pattern=r"^[a-z][a-z-]{0,31}$",
        description="One word for what the command does (restart, cleanup).",
    )
    action_done: str = Field(
        default="acted on", max_length=32, description="Its past tense (restarted, cleaned)."
    )
    action_verb: str = Field(
        default="", max_length=64, description="How a plan says it (clean up). Empty: the word."
    )
    command: str = Field(default="", max_length=10_000, description="Run on each bad host.")
    health_command: str = Field(
        default="", description="Run where the command succeeded; must exit 0. Empty: none."
    )
    allowlist: list[str] | None = Field(
        default=None,
        description="Regular expressions; the command and the health check must each match one.",
    )
    dry_run: bool = Field(
        default=True,
        description="Plan and report, act on nothing. On by default: see a new runbook's plan "
        "before it acts.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_preset(cls, data: Any) -> Any:
        # A field left empty (a form's blank, null) is not given: it takes the preset's value,
        # or the default.
        if not isinstance(data, dict):
            return data
        given = {field: value for field, value in data.items() if value not in (None, "")}
        preset = given.get("preset")
        return {**PRESETS.get(preset, {}), **given} if isinstance(preset, str) else given

    @field_validator("allowlist")
    @classmethod
    def _patterns_compile(cls, value: list[str] | None) -> list[str] | None:
        return check_patterns(value)

    @field_serializer("command", "health_command", when_used="json")
    def _command_as_stored(self, command: str) -> str:
        # What Prefect stores as the run's parameters: a password typed into a command is not.
        return mask_secrets(command)

    def checked(self) -> RemediateParams:
        """These parameters, once whole: every part given (here or by the preset), the recovery
        on the good side of the threshold, the command and the health check allowed.

        Checked when the rollout is built, not when the model is: a run of a deployment may
        give only some fields (`{"params": {"dry_run": false}}`) and take the rest from the
        deployment (`with_deployment_defaults`).

        Raises:
            ConfigurationError: what is missing or contradictory, naming the field.
            CommandNotAllowed: a command outside the allowlist.
        """
        missing = [field for field in REQUIRED if getattr(self, field) in (None, "")]
        if missing:
            raise ConfigurationError(
                f"{missing[0]} is missing: give {missing[0]} ({REQUIRED[missing[0]]}) or a preset"
            )
        assert self.threshold is not None and self.recovery is not None
        if self.side == "above" and self.recovery > self.threshold:
            raise ConfigurationError(
                f"recovery ({self.recovery:g}) must not be above threshold ({self.threshold:g}) "
                "when the bad side is above: lower recovery or raise threshold"
            )
        if self.side == "below" and self.recovery < self.threshold:
            raise ConfigurationError(
                f"recovery ({self.recovery:g}) must not be below threshold ({self.threshold:g}) "
                "when the bad side is below: raise recovery or lower threshold"
            )
        check_command(self.command, self.allowlist)
        if self.health_command.strip():
            try:
                check_command(self.health_command, self.allowlist)
            except CommandNotAllowed as refused:
                # its messages start "command ...": this one is the health check's
                raise CommandNotAllowed(f"health_{refused}") from None
        return self

    @property
    def fleet_budget(self) -> FleetBudget:
        """Counted per runbook name: a preset of a shipped runbook shares that one's budget."""
        return dataclasses.replace(super().fleet_budget, runbook=self.name)

    @property
    def rollout(self) -> Rollout:
        """This runbook as the engine runs it, once `checked` (a model built unchecked,
        `model_construct`, does not slip past the allowlist either)."""
        self.checked()
        assert self.threshold is not None and self.recovery is not None
        health = self.health_command.strip()
        return Rollout(
            runbook=self.name,
            action=Action(
                name=self.action_name,
                done=self.action_done,
                verb=self.action_verb,
                command=self.command.strip(),  # both allowed: `checked` above
                health_command=health or None,
            ),
            signal=Signal(
                name=self.signal_name,
                query=self.query,
                threshold=self.threshold,
                recovery=self.recovery,
                side=self.side,
                freshness_query=self.freshness_query or None,
                max_sample_age_seconds=self.max_sample_age_seconds,
            ),
        )


@runbook(name="remediate")
def remediate(params: RemediateParams) -> State:
    """Run a command on the hosts a signal shows as bad, in batches, and verify they recovered."""
    params = with_deployment_defaults(params, "params")
    return roll_out(params.rollout, params)  # incomplete or disallowed: one line, nothing run
