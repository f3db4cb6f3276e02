"""Runbook: run a command on the hosts a selector picks, in batches; results per host.

A rollout on the engine (`opsflow.flows.runbooks.rollout`) without a signal: every selected host is a
candidate. The same brakes as the other acting runbooks: a blast-radius cap (`max_hosts`), a
plan and a dry run, approval, the per-host locks, `max_failures` across batches, and jobs that
are cancelled when they outlive their timeout; the command is checked against the allowlist
before anything starts, and a password in it or in its output is masked everywhere.

Example:
    >>> run_command(RunCommandParams(command="uptime", selector={"tags": ["web"]}))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar

from prefect.states import State
from pydantic import Field, field_serializer, field_validator, model_validator

from opsflow.flows.runbooks.rollout import roll_out
from opsflow.flows.runbooks.runbook_flow import runbook
from opsflow.opsapi.redaction import mask_secrets
from opsflow.tasks.command_policy import check_command, check_patterns
from opsflow.tasks.rollout_policy import Action, Rollout, RolloutPolicy
from opsflow.tasks.runbook import with_deployment_defaults


class RunCommandParams(RolloutPolicy):
    """The command, where it runs, and how carefully."""

    # Also refused by `opsflow run` before the runbook is imported (the option specs).
    EMPTY_SCOPE: ClassVar[str] = (
        "selector is empty: give tags, hostname_pattern or hostnames, or set all_hosts"
    )

    command: str = Field(min_length=1, max_length=10_000, description="Command for /bin/sh -c.")
    all_hosts: bool = Field(
        default=False, description="Allow an empty selector, i.e. every host in the inventory."
    )
    allowlist: list[str] | None = Field(
        default=None, description="Regular expressions; the command must match one completely."
    )
    max_hosts: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Blast-radius cap: more selected hosts than this runs nothing.",
    )
    batch_size: int = Field(default=50, ge=1, le=10_000, description="Hosts per job.")
    job_timeout_seconds: int = Field(
        default=60, ge=1, le=3600, description="Per-host timeout of the command."
    )

    @field_serializer("command", when_used="json")
    def _command_as_stored(self, command: str) -> str:
        # What Prefect stores as the run's parameters: a password typed into a command is not.
        return mask_secrets(command)

    @field_validator("allowlist")
    @classmethod
    def _patterns_compile(cls, value: list[str] | None) -> list[str] | None:
        return check_patterns(value)

    @model_validator(mode="after")
    def _scope(self) -> RunCommandParams:
        chosen = self.selector.tags or self.selector.hostname_pattern
        if not chosen and self.selector.hostnames is None and not self.all_hosts:
            raise ValueError(self.EMPTY_SCOPE)
        check_command(self.command, self.allowlist)  # refused before anything starts
        return self


@runbook(name="run-command")
def run_command(params: RunCommandParams) -> State:
    """Run a command on the hosts a selector picks, in batches, with per-host results."""
    params = with_deployment_defaults(params, "params")
    command = check_command(params.command, params.allowlist)  # again: a model built unchecked
    action = Action(name="command", done="ran", verb="run the command on", command=command)
    return roll_out(Rollout(runbook="run-command", action=action), params)
