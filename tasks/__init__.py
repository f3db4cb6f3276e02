"""Prefect tasks: one per API operation, thin over the clients the blocks hand out."""

from opsflow.tasks.alerts import expire_silence, silence_hosts
from opsflow.tasks.fleet_budget import Claim, FleetBudget, claim_hosts
from opsflow.tasks.host_selection import HostSelection
from opsflow.tasks.hosts import (
    create_host,
    create_hosts,
    delete_host,
    get_host,
    list_hosts,
    replace_host,
    replace_hosts,
    select_hosts,
    update_host,
)
from opsflow.tasks.jobs import cancel_job, execute_job, get_job, run_job, wait_for_job
from opsflow.tasks.monitoring import (
    Reading,
    Readings,
    query_instant,
    query_metric,
    query_range,
    query_values,
    wait_for_recovery,
)
from opsflow.tasks.notify import notify
from opsflow.tasks.rollout_plan import Candidate, RolloutPlan
from opsflow.tasks.rollout_policy import Action, RemediationPolicy, Rollout, RolloutPolicy, Signal
from opsflow.tasks.rollout_report import ApprovalRecord, HostOutcome, RolloutReport
from opsflow.tasks.runbook import RunbookAborted

__all__ = [
    "Action",
    "ApprovalRecord",
    "Candidate",
    "Claim",
    "FleetBudget",
    "HostOutcome",
    "HostSelection",
    "Reading",
    "Readings",
    "RemediationPolicy",
    "Rollout",
    "RolloutPlan",
    "RolloutPolicy",
    "RolloutReport",
    "RunbookAborted",
    "Signal",
    "cancel_job",
    "claim_hosts",
    "create_host",
    "create_hosts",
    "delete_host",
    "execute_job",
    "expire_silence",
    "get_host",
    "get_job",
    "list_hosts",
    "notify",
    "query_instant",
    "query_metric",
    "query_range",
    "query_values",
    "replace_host",
    "replace_hosts",
    "run_job",
    "select_hosts",
    "silence_hosts",
    "update_host",
    "wait_for_job",
    "wait_for_recovery",
]
