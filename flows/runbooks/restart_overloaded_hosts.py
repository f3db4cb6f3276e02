"""Runbook: restart overloaded hosts in batches and verify that they recovered.

    1. load from Prometheus, hosts from the platform, joined; no data, no action
    2. plan: over the threshold, selected, not within the cooldown, not flapping, worst first,
       capped; the plan is an artifact and a dry run stops here
    3. optional approval in the Prefect UI (no answer in time = reject)
    4. per-host locks and the fleet budget shared by every run; optional Alertmanager silence
    5. rolling restart: `systemctl restart`, `systemctl is-active`, the load under the recovery
       threshold; stop once failures reach the limit
    6. report, events, notification, typed result

Every step is the rollout engine's (`opsflow.flows.runbooks.rollout`); this module says what to restart
and what tells a host is overloaded.

Example:
    >>> from opsflow.flows.runbooks.restart_overloaded_hosts import restart_overloaded_hosts, RestartPolicy
    >>> report = restart_overloaded_hosts(RestartPolicy(threshold=4, dry_run=True))  # doctest: +SKIP
    >>> report.outcome                                                               # doctest: +SKIP
    'dry_run'
"""

from __future__ import annotations

from typing import ClassVar

from prefect.states import State
from pydantic import Field, model_validator

from opsflow.flows.runbooks.rollout import roll_out
from opsflow.flows.runbooks.runbook_flow import runbook
from opsflow.tasks.parameters import ordered_fields
from opsflow.tasks.rollout_policy import Action, RemediationPolicy, Rollout, Signal
from opsflow.tasks.runbook import with_deployment_defaults

SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$"


class RestartPolicy(RemediationPolicy):
    """What to restart, how carefully, and how to tell that it worked.

    Example:
        >>> RestartPolicy(threshold=4, recovery_threshold=2, batch_size=2).restart_command
        'systemctl restart nginx'
    """

    runbook: ClassVar[str] = "restart-overloaded-hosts"
    NOT_ABOVE: ClassVar[dict[str, str]] = {"recovery_threshold": "threshold"}

    query: str = Field(
        default="node_load1", min_length=1, description="PromQL giving load per instance."
    )
    threshold: float = Field(
        default=4.0, gt=0, description="Restart hosts whose load is above this."
    )
    recovery_threshold: float = Field(
        default=2.0, gt=0, description="A restarted host is healthy again below this load."
    )
    service: str = Field(default="nginx", pattern=SERVICE_NAME, description="Service to restart.")

    @model_validator(mode="after")
    def _recovery_below_threshold(self) -> RestartPolicy:
        ordered_fields(self)
        return self

    @property
    def restart_command(self) -> str:
        return f"systemctl restart {self.service}"

    @property
    def health_command(self) -> str:
        return f"systemctl is-active {self.service}"

    @property
    def rollout(self) -> Rollout:
        """This runbook as the engine runs it."""
        return Rollout(
            runbook=self.runbook,
            action=Action(
                name="restart",
                done="restarted",
                command=self.restart_command,
                health_command=self.health_command,
            ),
            signal=Signal(
                name="load",
                query=self.query,
                threshold=self.threshold,
                recovery=self.recovery_threshold,
                max_sample_age_seconds=self.max_sample_age_seconds,
            ),
        )


DEFAULTS = RestartPolicy()  # the form's defaults; never mutated


@runbook(name="restart-overloaded-hosts")
def restart_overloaded_hosts(policy: RestartPolicy = DEFAULTS) -> State:
    """Restart the service of hosts over a load threshold, in batches, and verify they recovered.

    The plan (who, in which batches) is an artifact; a dry run stops there. Failures are counted
    across batches and stop the rollout at `max_failures`.
    """
    policy = with_deployment_defaults(policy, "policy")
    return roll_out(policy.rollout, policy)
