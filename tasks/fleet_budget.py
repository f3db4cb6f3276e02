"""The fleet budget: how many hosts one kind of runbook may act on within a sliding window,
counted across every run, runbook, worker and API server, and across a server restart.

The blast-radius cap counts the hosts of one run; eight alerts of one host each are eight runs
of one host. The budget counts them all: a run claims its hosts from the budget before it acts
and gets what is left of it; the others are reported "not touched: fleet budget ...".

The ledger is a Prefect variable per budget (``opsflow-budget-<runbook>[-<key>]``, on the UI's
Variables page): ``[[time, hosts], ...]``, one entry per claim within the window. A claim is
made under the budget's lock (a host lock named ``budget-<runbook>[-<key>]``: shared by every
run, freed by a killed run's lease like any host lock, listed by ``opsflow locks``), so two runs
never both take the last host. The ledger lives in Prefect's database: it survives a restart
of the API server and is the same for every server and worker of one Prefect. A claimed host
counts whether or not the run then acted on it (a killed run's claim stays until the window
passes): the budget errs towards doing less. Delete the variable to start a budget afresh.

Example:
    >>> budget = FleetBudget(runbook="restart-overloaded-hosts", hosts=5, minutes=30)
    >>> budget.variable
    'opsflow-budget-restart-overloaded-hosts'
    >>> claim_hosts(budget, ["17", "18"]).granted  # doctest: +SKIP
    ['17', '18']
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.variables import Variable

from opsflow.tasks.host_locks import host_locks
from opsflow.tasks.wording import plural

BUDGET_PREFIX = "opsflow-budget-"
# How long a run waits for another run's claim (a claim takes well under a second).
LOCK_WAIT_SECONDS = 30.0
# A Prefect variable holds at most 5,000 characters; older claims are merged into newer ones
# (counted longer, never shorter) to stay well inside it.
MAX_ENTRIES = 100


@dataclass(frozen=True)
class FleetBudget:
    """At most `hosts` hosts acted on by `runbook` within `minutes` (0 minutes: no budget);
    runs with another `key` (for example a tag) have a budget of their own."""

    runbook: str
    hosts: int
    minutes: float
    key: str = ""

    @property
    def name(self) -> str:
        return f"{self.runbook}-{self.key}" if self.key else self.runbook

    @property
    def variable(self) -> str:
        """The Prefect variable that holds the ledger."""
        return f"{BUDGET_PREFIX}{self.name}"

    @property
    def text(self) -> str:
        """ "fleet budget of 5 hosts per 30 min" — the words of every report and log."""
        return f"fleet budget of {plural(self.hosts, 'host')} per {self.minutes:g} min"


@dataclass
class Claim:
    """What a run got from the budget: the hosts it may act on, and why the others not."""

    granted: list[str]
    refused: list[str] = field(default_factory=list)
    reason: str = ""  # why `refused` were refused, in the report's words


class LedgerUnreadable(ValueError):
    """The ledger variable is not a list of [time, hosts] entries (edited by hand?)."""


def _entries(value: object, since: float) -> list[list[float]]:
    """The ledger's claims made after `since`. Raises LedgerUnreadable on anything else."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(e, list)
        and len(e) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in e)
        and e[1] >= 0
        for e in value
    ):
        raise LedgerUnreadable(f"not a list of [time, hosts] entries: {str(value)[:80]}")
    return [e for e in value if e[0] > since]


def _compacted(entries: list[list[float]]) -> list[list[float]]:
    """At most MAX_ENTRIES entries: the oldest are added to the next one (counted longer)."""
    entries = sorted(entries)
    while len(entries) > MAX_ENTRIES:
        oldest = entries.pop(0)
        entries[0][1] += oldest[1]
    return entries


@task(name="Claim hosts from the fleet budget", cache_policy=NO_CACHE)
def claim_hosts(budget: FleetBudget, host_ids: list[str]) -> Claim:
    """Take up to what is left of `budget` for these hosts (in their order: the worst first).

    Fails closed: when the budget's lock or ledger cannot be read, no host is granted.
    """
    if budget.minutes <= 0 or not host_ids:
        return Claim(granted=list(host_ids))
    with host_locks([f"budget-{budget.name}"], LOCK_WAIT_SECONDS) as (ours, _):
        if not ours:
            return Claim(
                [],
                list(host_ids),
                f"{budget.text}: busy, another run held it {LOCK_WAIT_SECONDS:g} s",
            )
        now = time.time()
        try:
            entries = _entries(Variable.get(budget.variable), now - budget.minutes * 60)
        except LedgerUnreadable as exc:
            return Claim(
                [],
                list(host_ids),
                f"{budget.text}: variable {budget.variable!r} is unreadable ({exc}); delete it "
                "to start the budget afresh",
            )
        used = int(sum(hosts for _, hosts in entries))
        granted = list(host_ids[: max(0, budget.hosts - used)])
        if granted:
            entries.append([round(now, 3), len(granted)])
            Variable.set(budget.variable, _compacted(entries), overwrite=True)
    refused = list(host_ids[len(granted) :])
    return Claim(granted, refused, f"{budget.text} reached" if refused else "")


def budget_used(budget: FleetBudget) -> int:
    """Hosts claimed from `budget` within its window now (unreadable ledger: ValueError).

    Example:
        >>> budget_used(FleetBudget("restart-overloaded-hosts", 5, 30))  # doctest: +SKIP
        2
    """
    return int(
        sum(
            h for _, h in _entries(Variable.get(budget.variable), time.time() - budget.minutes * 60)
        )
    )


def forget_budgets() -> list[str]:
    """Delete every fleet budget's ledger (a lab reset, a new start); return their names."""
    with get_client(sync_client=True) as client:
        names = [v.name for v in client.read_variables() if v.name.startswith(BUDGET_PREFIX)]
        for name in names:
            try:
                client.delete_variable_by_name(name)
            except ObjectNotFound:  # another reset was first
                pass
    return names
