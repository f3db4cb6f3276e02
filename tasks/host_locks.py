"""Per-host locks shared by every runbook, and the cooldown after a restart.

A lock is a Prefect global concurrency limit of 1 named ``opsflow-host-<id>``, created before it
is taken (a limit that does not exist locks nothing) and held with a 60 s lease (Prefect's
minimum) that the run renews while it lives (3/4 into each lease), so a crashed (even
SIGKILLed) run frees its hosts within about 75 s: the lease runs out and the server's
repossessor (every 15 s) takes the slots back. The cooldown is read from the platform's own
job history, so it holds across process restarts and for every tool that uses the platform.

Each run that takes locks says so in an ``opsflow.host.locked`` event (the lock, the run), so
`held_locks()` can name the run holding each lock and `release_stale()` can free a lock whose
run ended without giving it back (a server restart that lost the lease in memory).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx
from httpx import Response
from prefect import get_run_logger, task
from prefect.client.base import PrefectResponse
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)
from prefect.exceptions import MissingContextError, ObjectAlreadyExists, ObjectNotFound
from prefect.states import Crashed
from pydantic import BaseModel, Field

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.models import JobStatus
from opsflow.tasks.hosts import READ
from opsflow.tasks.wording import plural

LOCK_PREFIX = "opsflow-host-"
LOCKED_EVENT = "opsflow.host.locked"
# A run's lease outlives it by at most its duration (60 s) plus the repossessor's 15 s: a lock
# still held this long after its run ended has lost its lease and will never be freed.
STALE_AFTER = timedelta(seconds=90)


class _HeldLockIsNotAnError(logging.Filter):
    """Prefect's slot service logs every acquisition timeout as an ERROR with a traceback; for
    host locks a timeout only means another run holds the host, which we report ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("ConcurrencySlotAcquisition" in message and "raised TimeoutError" in message)


logging.getLogger("prefect._internal.concurrency").addFilter(_HeldLockIsNotAnError())


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger in a flow run; this module's elsewhere (a script, the CLI)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


# A Prefect server on SQLite answers 503 when another write committed while a request read
# (SQLITE_BUSY_SNAPSHOT: nothing was changed). Taking the locks collided with the run's own
# task-run writes in most runs on a server that commits each as it comes (opsflow's local
# server batches them: local_server.WRITE_BATCHING), so these calls retry a 503 after a few
# tens of milliseconds.
# They bypass Prefect's retry loop for that: it sleeps (2 s and more) before it hands back a
# 503, even with PREFECT_CLIENT_MAX_RETRIES=0 (it sleeps, then counts): measured 2.2 s of a
# 5 s run at 1,000 hosts.
BUSY_BACKOFF_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.4)
INCREMENT = "/v2/concurrency_limits/increment-with-lease"
DECREMENT = "/v2/concurrency_limits/decrement-with-lease"


def without_stall(path: str, body: dict[str, Any] | None, method: str = "POST") -> Response:
    """One call to Prefect's API (a lease, the fleet budget's ledger), a busy 503 retried
    within a second; anything else (a connection error, a 503 that lasts, a CSRF token to
    fetch) goes on to Prefect's client with its own retries. A 4xx or 5xx answer raises
    httpx.HTTPStatusError. Only for calls that a busy 503 leaves undone and that may be made
    again: a lease, a read, a write of a whole value."""
    with get_client(sync_client=True) as client:
        http = client._client  # Prefect's httpx client: the API's address, auth and headers
        for pause in (*BUSY_BACKOFF_SECONDS, None):
            try:
                # httpx's own send: one try, none of Prefect's retry sleeps
                response = httpx.Client.send(http, http.build_request(method, path, json=body))
            except httpx.TransportError:
                break
            if response.status_code == 403:  # a CSRF-protected server: Prefect's client asks
                break
            if response.status_code != 503:  # raised with the server's detail, as Prefect does
                return PrefectResponse.from_httpx_response(response).raise_for_status()
            if pause is None:
                break
            time.sleep(pause)
        return client.request(method, path, json=body)  # type: ignore[arg-type]


def _acquire(
    names: list[str],
    timeout_seconds: float,
    lease_seconds: float,
    holder: ConcurrencyLeaseHolder | None,
) -> UUID:
    """One lease on a slot of every named limit, waiting up to `timeout_seconds` while one is
    held (the server's 423 and Retry-After). TimeoutError when still held; LocksNotCreated,
    holding nothing, when any of the limits does not exist (it would lock nothing)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            response = without_stall(
                INCREMENT,
                {
                    "names": names,
                    "slots": 1,
                    "mode": "concurrency",
                    "lease_duration": lease_seconds,
                }
                | ({"holder": holder.model_dump(mode="json")} if holder is not None else {}),
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise ConcurrencySlotAcquisitionError(f"cannot take host locks: {exc}") from exc
            # The server's Retry-After grows with how long the lock is usually held (up to
            # 30 s): ask again after it or at the end of the wait, whichever comes first.
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"host locks held after {timeout_seconds:g} s") from None
            time.sleep(min(float(exc.response.headers.get("Retry-After", 1)), left))
            continue
        granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
        missing = set(names) - {limit.name for limit in granted.limits}
        if missing:
            # The server leases the limits that exist and skips the others: a host new to the
            # fleet would be "locked" without a lock. Give the lease back; the caller creates
            # the missing limits and takes them all again.
            if granted.limits:
                _release(granted.lease_id)
            raise LocksNotCreated(sorted(missing))
        return granted.lease_id


class LocksNotCreated(ConcurrencySlotAcquisitionError):
    """Some of the locks asked for do not exist yet; none is held."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"{plural(len(missing), 'host lock')} not created yet: {missing[:3]}")
        self.missing = missing


def _release(lease_id: UUID) -> None:
    """Give a lease back; when that fails it runs out by itself (its duration, then the
    server's repossessor), so a finished rollout does not fail over it."""
    try:
        without_stall(DECREMENT, {"lease_id": str(lease_id)})
    except httpx.HTTPError as exc:
        _logger().warning("host locks not given back (%s): they free themselves within 75 s", exc)


# A lease is renewed when this much of it has passed (Prefect's own fraction); a renewal that
# failed (the API down a moment) is tried again every RENEW_RETRY_SECONDS until the locks are
# given back or the server says the lease is gone.
RENEW_AT = 0.75
RENEW_RETRY_SECONDS = 5.0


def _renew_until(stop: threading.Event, lease_id: UUID, lease_seconds: float) -> None:
    """Renew the lease each RENEW_AT of its duration until `stop`: the first time RENEW_AT in,
    not at once (Prefect's `maintain_concurrency_lease` renews the moment it starts: one more
    write per lock taken, racing the run's own writes on SQLite, for a lease just granted)."""
    if stop.wait(lease_seconds * RENEW_AT):
        return  # most runs: given back before a renewal was due, and no client was made
    failing = False  # warned once per outage, not at every try
    with get_client(sync_client=True) as client:
        wait = 0.0
        while not stop.wait(wait):
            try:
                client.renew_concurrency_lease(lease_id=lease_id, lease_duration=lease_seconds)
            except Exception as exc:  # the API unreachable, a 5xx, the lease gone
                if stop.is_set():  # given back meanwhile: the answer is about a lease let go
                    return
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if status in (404, 410):  # ran out: another run may hold them now
                    _logger().warning(
                        "host locks lost: their lease ran out before it was renewed (%s)", exc
                    )
                    return
                (_logger().debug if failing else _logger().warning)(
                    "host locks' lease not renewed yet, trying again every %g s (%s)",
                    RENEW_RETRY_SECONDS,
                    exc,
                )
                failing, wait = True, RENEW_RETRY_SECONDS
            else:
                if failing:
                    _logger().info("host locks' lease renewed again")
                failing, wait = False, lease_seconds * RENEW_AT


@contextmanager
def _concurrency(
    names: list[str],
    timeout_seconds: float,
    lease_seconds: float,
    holder: ConcurrencyLeaseHolder | None,
) -> Iterator[None]:
    """Prefect's `concurrency()` (one lease for all the slots, renewed while held, given back
    at the end) without its costs: a 2 s wait whenever a Prefect server on SQLite answers a
    busy 503 (see `without_stall`), one event per limit naming every other limit taken with
    it (250,000 related resources at 500 hosts), and a renewal the moment the lease is granted.
    A renewal that fails warns and is tried again; the run goes on (cancelling it between a
    restart and its verification would be worse; the platform's job history, the cooldown,
    still keeps a host from a second restart). Each lock's `opsflow.host.locked` event says
    which run holds it."""
    lease_id = _acquire(names, timeout_seconds, lease_seconds, holder)
    stop = threading.Event()
    # the run's context goes with the thread, so its warnings reach the run's logs
    renewal = threading.Thread(
        target=contextvars.copy_context().run,
        args=(_renew_until, stop, lease_id, lease_seconds),
        name=f"opsflow-lease-{lease_id}",
        daemon=True,
    )
    renewal.start()
    try:
        yield
    finally:
        stop.set()
        renewal.join(timeout=2)
        _release(lease_id)


def lock_name(host_id: str) -> str:
    return f"{LOCK_PREFIX}{host_id}"


@contextmanager
def host_locks(
    host_ids: list[str], wait_seconds: float = 10.0, lease_seconds: float = 60
) -> Iterator[tuple[list[str], list[str]]]:
    """Take the lock of each host; yield (locked by us, held by another run).

    Fails closed: a host whose lock cannot be taken is in the second list, never the first.
    The common case (nobody else holds any of them) costs one API call for all hosts.
    """
    names = [lock_name(h) for h in host_ids]
    with ExitStack() as stack:
        if names and _take(stack, names, wait_seconds, lease_seconds):
            yield list(host_ids), []
            return
        ours, theirs = [], []
        for host_id in host_ids:  # someone holds some of them: find out which, one by one
            # Waited once already: a host held now is held by another run (one ask each;
            # a busy API is retried by the lease call itself).
            took = _take(stack, [lock_name(host_id)], 0, lease_seconds)
            (ours if took else theirs).append(host_id)
        if theirs:
            _logger().warning(
                "%s locked by another run: %s",
                f"{plural(len(theirs), 'host')} {'is' if len(theirs) == 1 else 'are'}",
                ", ".join(theirs[:20]),
            )
        yield ours, theirs


def locked_now(host_ids: list[str]) -> list[str]:
    """The hosts whose lock a run holds now: read, not taken (no side effect on other runs;
    ask before taking them yourself). A run holding a host is restarting or verifying it."""
    held = []
    with get_client(sync_client=True) as client:
        for host_id in host_ids:
            try:
                limit = client.read_global_concurrency_limit_by_name(lock_name(host_id))
            except ObjectNotFound:  # never locked
                continue
            if limit.active_slots:
                held.append(host_id)
    return held


def _take(stack: ExitStack, names: list[str], wait_seconds: float, lease_seconds: float) -> bool:
    """Hold every named lock (creating missing ones first) or none; False when one is held."""

    run = FlowRunContext.get()
    run_id = run.flow_run.id if run and run.flow_run else None

    def enter() -> None:
        stack.enter_context(
            _concurrency(
                names,
                timeout_seconds=wait_seconds,
                lease_seconds=lease_seconds,
                holder=ConcurrencyLeaseHolder(type="flow_run", id=run_id) if run_id else None,
            )
        )

    try:
        enter()
    except ConcurrencySlotAcquisitionError as exc:
        # A limit that does not exist locks nothing: create the missing ones (all of them when
        # the server's refusal did not say which).
        missing = exc.missing if isinstance(exc, LocksNotCreated) else names
        with get_client(sync_client=True) as client:
            for name in missing:
                try:
                    client.upsert_global_concurrency_limit_by_name(name, limit=1)
                except ObjectAlreadyExists:  # another run created it first: as good
                    pass
        try:
            enter()
        except TimeoutError:
            return False
    except TimeoutError:
        return False
    for name in names:
        emit_event(
            LOCKED_EVENT,
            resource={"prefect.resource.id": f"opsflow.lock.{name}", "prefect.resource.name": name},
            related=(
                [
                    {
                        "prefect.resource.id": f"prefect.flow-run.{run_id}",
                        "prefect.resource.role": "flow-run",
                    }
                ]
                if run_id
                else []
            ),
            payload={"flow_run_id": str(run_id) if run_id else None},
        )
    return True


@dataclass
class HeldLock:
    """A host lock held now, and the run that took it (None when no event says)."""

    name: str
    host_id: str
    flow_run_id: UUID | None
    flow_run_name: str | None
    state: str | None  # the holder run's state type: RUNNING, COMPLETED, CRASHED, ...
    ended_at: datetime | None  # when that run reached a final state
    taken_at: datetime | None = None  # when its run said it took it
    lease_gone: bool = False  # no lease on the server holds it (known on opsflow's local one)

    def stale(self, after: timedelta = STALE_AFTER) -> bool:
        """The holder run ended (or crashed) long enough ago that its lease is surely gone, or
        no lease holds the lock any more (the server that granted it is gone)."""
        return self.why_stale(after) is not None

    def why_stale(self, after: timedelta = STALE_AFTER) -> str | None:
        """Why the lock will never be freed by Prefect, in words; None when it may be."""
        now = datetime.now(timezone.utc)
        run = f"its run {self.flow_run_name or self.flow_run_id or '(unknown)'}"
        if self.ended_at is not None and now - self.ended_at >= after:
            return f"{run} ended {self.state} {(now - self.ended_at).total_seconds():.0f}s ago"
        if self.lease_gone and (self.taken_at is None or now - self.taken_at >= after):
            return (
                f"no lease holds it: the server that granted it is gone ({run} is still marked "
                f"{self.state or 'unknown'}: its process died with that server)"
            )
        return None


def held_locks(leases: Callable[[], set[str]] | None = None) -> list[HeldLock]:
    """Every host lock with a slot taken, with its holder run and that run's state.

    Args:
        leases: the ids of the limits some lease on the server holds, when they can be read
            (opsflow's local server keeps its leases in files); read after the limits, so a
            lease granted meanwhile is seen.

    Example:
        >>> [(lock.host_id, lock.state) for lock in held_locks()]  # doctest: +SKIP
        [('17', 'RUNNING')]
    """
    with get_client(sync_client=True) as client:
        limits, offset = [], 0
        while True:
            page = client.read_global_concurrency_limits(limit=200, offset=offset)
            limits += [g for g in page if g.name.startswith(LOCK_PREFIX) and g.active_slots]
            if len(page) < 200:
                break
            offset += 200
        leased = leases() if leases is not None else None
        holders = _holders(client, [g.name for g in limits])
        held = []
        for limit in sorted(limits, key=lambda g: g.name):
            run_id, taken_at = holders.get(limit.name, (None, None))
            run = None
            if run_id:
                try:
                    run = client.read_flow_run(run_id)
                except ObjectNotFound:
                    run = None
            final = run is not None and run.state is not None and run.state.is_final()
            held.append(
                HeldLock(
                    name=limit.name,
                    host_id=limit.name.removeprefix(LOCK_PREFIX),
                    flow_run_id=run_id,
                    flow_run_name=run.name if run else None,
                    state=run.state.type.value if run and run.state else None,
                    ended_at=run.state.timestamp if final else None,  # type: ignore[union-attr]
                    taken_at=taken_at,
                    lease_gone=leased is not None and str(limit.id) not in leased,
                )
            )
    return held


def _holders(client: object, names: list[str]) -> dict[str, tuple[UUID, datetime]]:
    """Lock name -> the run that last took it and when, from the `opsflow.host.locked`
    events."""
    found: dict[str, tuple[UUID, datetime]] = {}
    for start in range(0, len(names), 100):
        wanted = {f"opsflow.lock.{n}": n for n in names[start : start + 100]}
        page = client.read_events(  # type: ignore[attr-defined]
            EventFilter(
                event=EventNameFilter(name=[LOCKED_EVENT]),
                resource=EventResourceFilter(id=list(wanted)),
                occurred=EventOccurredFilter(since=datetime.now(timezone.utc) - timedelta(days=7)),
                order="DESC",
            ),
            limit=50,  # the API's most per page
        )
        while True:
            for event in page.events:
                name = wanted.get(event.resource.id)
                run_id = event.payload.get("flow_run_id")
                if name and name not in found and run_id:
                    found[name] = (UUID(run_id), event.occurred)
            if len(found) >= len(names) or not page.next_page:
                break
            page = client.read_events_page(page.next_page)  # type: ignore[attr-defined]
    return found


def release_stale(
    after: timedelta = STALE_AFTER, leases: Callable[[], set[str]] | None = None
) -> list[HeldLock]:
    """Free each host lock whose holder run ended at least `after` ago (90 s: its lease is
    surely gone), or that no lease holds (`leases`: the server that granted it is gone; its
    run, still marked running, is marked Crashed); return the ones freed. A lock of a live
    run, or of a run nobody recorded, is left alone."""
    stale = [lock for lock in held_locks(leases) if lock.stale(after)]
    with get_client(sync_client=True) as client:
        for lock in stale:
            client.update_global_concurrency_limit(
                lock.name, GlobalConcurrencyLimitUpdate(active_slots=0)
            )
            if lock.lease_gone and lock.ended_at is None and lock.flow_run_id is not None:
                with contextlib.suppress(Exception):  # freed either way; the state is a courtesy
                    client.set_flow_run_state(
                        lock.flow_run_id,
                        Crashed(message="its host lock had no lease: its server is gone"),
                        force=True,
                    )
    return stale


class ActionHistory(BaseModel):
    """What the backend's job history says about one command's recent runs, per host id."""

    recent: dict[str, float] = Field(
        default_factory=dict,
        description="minutes since the command last ran (or is running) there, within the cooldown",
    )
    repeats: dict[str, int] = Field(
        default_factory=dict,
        description="times the command ran there (any outcome) within the repeat window",
    )


def _history(
    platform: ExecutionBackendBlock, command: str, cooldown_minutes: float, repeat_minutes: float
) -> ActionHistory:
    minutes = max(cooldown_minutes, repeat_minutes)
    if minutes <= 0:
        return ActionHistory()
    now = time.time()
    with platform.get_client() as client:
        jobs = client.list_jobs(since=str(now - minutes * 60), command=command)
    history = ActionHistory()
    for job in jobs:
        if job.command != command or job.created_at is None:
            continue
        age = (now - job.created_at.timestamp()) / 60
        for result in job.results:
            if age <= repeat_minutes and result.status != JobStatus.cancelled:
                history.repeats[result.host_id] = history.repeats.get(result.host_id, 0) + 1
            started = result.status in (JobStatus.success, JobStatus.running, JobStatus.pending)
            if started and age <= cooldown_minutes:
                history.recent[result.host_id] = min(age, history.recent.get(result.host_id, age))
    return history


@task(name="Read action history", **READ)
def action_history(
    platform: ExecutionBackendBlock, command: str, cooldown_minutes: float, repeat_minutes: float
) -> ActionHistory:
    """Per host: minutes since `command` last ran there within `cooldown_minutes`, and how
    often it ran there (any outcome but cancelled) within `repeat_minutes`; one read of the
    backend's job history, so it holds across runs, workers and tools."""
    return _history(platform, command, cooldown_minutes, repeat_minutes)


@task(name="Find recent actions", **READ)
def recently_acted_on(
    platform: ExecutionBackendBlock, command: str, minutes: float
) -> dict[str, float]:
    """Host id -> minutes since `command` last ran (or is running) there, within `minutes`."""
    return _history(platform, command, minutes, 0).recent
