"""A runbook of your own on opsflow's rollout engine: restart queue consumers whose lag is over
a threshold, verify it fell. The cap, fleet budget, locks, cooldown, escalation, dry run,
approval, report and notification come from the engine; this says what to read, do and check."""

from typing import ClassVar

from prefect import flow
from prefect.states import State
from pydantic import Field

from opsflow.flows.runbooks.rollout import roll_out
from opsflow.tasks import Action, RemediationPolicy, Rollout, Signal
from opsflow.tasks.notify import notify_on_finish
from opsflow.tasks.runbook import with_deployment_defaults


class ConsumerLagPolicy(RemediationPolicy):
    runbook: ClassVar[str] = "restart-lagging-consumers"

    lag_query: str = Field(default="max by (instance) (kafka_consumergroup_lag)")
    threshold: float = Field(default=10_000, gt=0, description="Restart above this lag.")
    recovered_below: float = Field(default=1_000, gt=0, description="Fixed under this lag.")
    service: str = Field(default="queue-consumer", pattern=r"^[\w@.-]+$")

    @property
    def rollout(self) -> Rollout:
        return Rollout(
            runbook=self.runbook,
            action=Action(name="restart", done="restarted", verb="restart",
                          command=f"systemctl restart {self.service}"),
            signal=Signal(name="consumer lag", query=self.lag_query, threshold=self.threshold,
                          recovery=self.recovered_below,
                          max_sample_age_seconds=self.max_sample_age_seconds),
        )  # fmt: skip


@flow(name="restart-lagging-consumers", on_completion=[notify_on_finish], on_failure=[notify_on_finish])  # fmt: skip
def restart_lagging_consumers(policy: ConsumerLagPolicy) -> State:
    """Restart the consumers whose lag is over the threshold; verify it fell."""
    return roll_out(policy.rollout, with_deployment_defaults(policy, "policy"))
