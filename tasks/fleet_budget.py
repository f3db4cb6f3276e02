"""The fleet budget: how many hosts one kind of runbook may act on within a sliding window,
counted across every run, runbook, worker and API server, and across a server restart.

The blast-radius cap counts the hosts of one run; eight alerts of one host each are eight runs
of one host. The budget counts them all: a run claims its hosts from the budget before it acts
and gets what is left of it; the others are reported "not touched: fleet budget ...".

The budget counts distinct hosts: a host claimed again within the window (a rerun after a
killed run) costs nothing more; how often one host is acted on is `max_repeats`' business.
The ledger is a Prefect variable per budget (``opsflow-budget-<runbook>[-<key>]``, on the
UI's Variables page): ``[[time, hosts, [host ids]], ...]``, one entry per claim within the
window. A claim is made under the budget's lock (a host lock named
``budget-<runbook>[-<key>]``: shared by every run, freed by a killed run's lease like any host
lock, listed by ``opsflow locks``), so two runs never both take the last host. The ledger
lives in Prefect's database: it survives a restart of the API server and is the same for every
server and worker of one Prefect. A claimed host counts whether or not the run then acted on
it: the budget errs towards doing less. Delete the variable to start a budget afresh.

Example:
    >>> budget = FleetBudget(runbook="restart-overloaded-hosts", hosts=5, minutes=30)
    >>> budget.variable
    'opsflow-budget-restart-overloaded-hosts'
    >>> claim_hosts(budget, ["17", "18"]).granted  # doctest: +SKIP
    ['17', '18']
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from opsflow.tasks.host_locks import host_locks, without_stall
from opsflow.tasks.wording import plural

BUDGET_PREFIX = "opsflow-budget-"
# How long a run waits for another run's claim (a claim takes well under a second).
LOCK_WAIT_SECONDS = 30.0
# A Prefect variable holds at most 5,000 characters (JSON): past this, the oldest claims are
# merged into the next one, and past it still their host ids are dropped (a host claimed again
# then counts again): counted longer or more, never shorter or less.
MAX_LEDGER_CHARS = 4000


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
    """The ledger variable is not a list of [time, hosts, [host ids]] entries (edited?)."""


Entry = list  # [time, hosts, [host ids]]: `hosts` claimed at `time`, those ids among them


def _entries(value: object, since: float) -> list[Entry]:
    """The ledger's claims made after `since`. Raises LedgerUnreadable on anything else."""
    if value is None:
        return []

    def readable(e: object) -> bool:
        return (
            isinstance(e, list)
            and len(e) == 3
            and isinstance(e[0], int | float)
            and isinstance(e[1], int)
            and not isinstance(e[1], bool)
            and isinstance(e[2], list)
            and all(isinstance(i, str) for i in e[2])
            and 0 <= len(e[2]) <= e[1]
        )

    if not isinstance(value, list) or not all(readable(e) for e in value):
        raise LedgerUnreadable(
            f"not a list of [time, hosts, [host ids]] entries: {str(value)[:80]}"
        )
    return [e for e in value if e[0] > since]


def _used(entries: list[Entry]) -> tuple[set[str], int]:
    """(the host ids claimed, how many more hosts were claimed without an id kept)."""
    ids = {i for _, _, kept in entries for i in kept}
    return ids, sum(hosts - len(kept) for _, hosts, kept in entries)


def _compacted(entries: list[Entry]) -> list[Entry]:
    """The ledger within MAX_LEDGER_CHARS: the oldest claims merged into the next one (at its
    later time), then, if still too long, the oldest ids dropped (each then counts as one)."""
    entries = sorted(entries, key=lambda e: e[0])
    while len(json.dumps(entries)) > MAX_LEDGER_CHARS and len(entries) > 1:
        (_, hosts_a, ids_a), (time_b, hosts_b, ids_b) = entries[0], entries[1]
        entries[:2] = [[time_b, hosts_a + hosts_b, ids_a + ids_b]]
    while len(json.dumps(entries)) > MAX_LEDGER_CHARS and entries[0][2]:
        entries[0][2] = entries[0][2][len(entries[0][2]) // 2 + 1 :]
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
        exists, value = _read_ledger(budget.variable)
        try:
            entries = _entries(value, now - budget.minutes * 60)
        except LedgerUnreadable as exc:
            return Claim(
                [],
                list(host_ids),
                f"{budget.text}: variable {budget.variable!r} is unreadable ({exc}); delete it "
                "to start the budget afresh",
            )
        ids, anonymous = _used(entries)
        # A host already claimed within the window (a rerun after a killed run, say) costs
        # nothing more: the budget counts hosts, repeats are for max_repeats to judge.
        left = budget.hosts - len(ids) - anonymous
        granted = []
        for host_id in host_ids:
            if host_id in ids or left > 0:
                left -= host_id not in ids
                granted.append(host_id)
        if granted:
            entries.append([round(now, 3), len(granted), list(granted)])
            _write_ledger(budget.variable, _compacted(entries), exists)
    refused = [h for h in host_ids if h not in granted]
    return Claim(granted, refused, f"{budget.text} reached" if refused else "")


# The ledger is read and written as the host locks' leases are taken: one call each, a busy
# SQLite 503 retried at once (Prefect's `Variable.set` reads, writes and reads again, and its
# client sleeps 2 s on a 503, which a claim made beside the run's own writes meets often).


def _ledger_path(name: str) -> str:
    return f"/variables/name/{quote(name, safe='')}"


def _read_ledger(name: str) -> tuple[bool, object]:
    """(whether the variable exists, its value)."""
    try:
        answer = without_stall(_ledger_path(name), None, method="GET")
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return False, None
        raise
    return True, answer.json()["value"]


def _write_ledger(name: str, value: list[Entry], exists: bool) -> None:
    """The whole ledger, written over the old one. A ledger deleted since it was read (a
    reset) is created again, and one created meanwhile (a create whose answer was lost, then
    retried) is written over: either way the variable ends holding `value`."""
    path = _ledger_path(name)
    try:
        if exists:
            without_stall(path, {"value": value}, method="PATCH")
        else:
            without_stall("/variables/", {"name": name, "value": value})
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404 and exists:
            without_stall("/variables/", {"name": name, "value": value})
        elif exc.response.status_code == 409 and not exists:
            without_stall(path, {"value": value}, method="PATCH")
        else:
            raise


def budget_used(budget: FleetBudget) -> int:
    """Hosts claimed from `budget` within its window now (unreadable ledger: ValueError).

    Example:
        >>> budget_used(FleetBudget("restart-overloaded-hosts", 5, 30))  # doctest: +SKIP
        2
    """
    entries = _entries(_read_ledger(budget.variable)[1], time.time() - budget.minutes * 60)
    ids, anonymous = _used(entries)
    return len(ids) + anonymous


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
