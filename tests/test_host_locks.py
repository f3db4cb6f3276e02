"""Host locks against a real Prefect API: all or nothing, new hosts included."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

from prefect.client.orchestration import get_client

from opsflow.tasks.host_locks import host_locks, lock_name


def slots(host_ids: list[str]) -> dict[str, int | None]:
    """host id -> active slots of its lock (None: the lock does not exist)."""
    with get_client(sync_client=True) as client:
        limits = {g.name: g.active_slots for g in client.read_global_concurrency_limits(limit=200)}
    return {h: limits.get(lock_name(h)) for h in host_ids}


def test_a_host_new_to_the_fleet_is_locked_with_hosts_locked_before(prefect_api):
    """The server leases the limits that exist and skips missing ones: a host whose lock was
    never created must not come out "locked" without a lock while the others are held."""
    known, new, other = (f"{uuid4().hex[:8]}-{n}" for n in ("known", "new", "other"))
    with get_client(sync_client=True) as client:
        for host in (known, other):
            client.upsert_global_concurrency_limit_by_name(lock_name(host), limit=1)
    assert slots([known, new, other]) == {known: 0, new: None, other: 0}

    with host_locks([known, new, other]) as (ours, theirs):
        assert (ours, theirs) == ([known, new, other], [])
        assert slots([known, new, other]) == {known: 1, new: 1, other: 1}
        # Another run wanting the new host finds it held.
        with host_locks([new], wait_seconds=0.5) as (second_ours, second_theirs):
            assert (second_ours, second_theirs) == ([], [new])

    assert slots([known, new, other]) == {known: 0, new: 0, other: 0}


def test_a_lock_freed_during_the_wait_is_taken_before_the_wait_ends(prefect_api):
    """The server's Retry-After (1.5-2.6 s for a new lock, up to 30 s for one usually held long)
    can be longer than the wait: the run asks again at the end of its wait instead of giving
    up at once and calling a host that was free by then "held by another run"."""
    host = f"{uuid4().hex[:8]}-busy"
    holding = threading.Event()

    def another_run() -> None:
        with host_locks([host]):
            holding.set()
            time.sleep(0.3)

    other = threading.Thread(target=another_run)
    other.start()
    assert holding.wait(30)
    try:
        with host_locks([host], wait_seconds=1.2) as (ours, theirs):
            assert (ours, theirs) == ([host], [])
            assert slots([host]) == {host: 1}
    finally:
        other.join()


def test_a_lock_held_past_its_renewals_stays_held_and_nothing_is_said(
    prefect_api, monkeypatch, caplog
):
    """The lease is renewed while held (on this real API: renewals every 45 ms here, every
    45 s in a run): the server accepts each, the lock stays taken, no warning is logged."""
    from prefect.client.orchestration import SyncPrefectClient

    import opsflow.tasks.host_locks as locks

    renewed: list[int] = []
    renew = SyncPrefectClient.renew_concurrency_lease

    def counted(self, *args, **kwargs):
        answer = renew(self, *args, **kwargs)
        renewed.append(answer.status_code)
        return answer

    monkeypatch.setattr(SyncPrefectClient, "renew_concurrency_lease", counted)
    monkeypatch.setattr(locks, "RENEW_AT", 0.00075)
    host = f"{uuid4().hex[:8]}-long"

    with caplog.at_level("WARNING"), host_locks([host]) as (ours, _):
        deadline = time.monotonic() + 10
        while len(renewed) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ours == [host] and slots([host]) == {host: 1}

    assert len(renewed) >= 3 and set(renewed) == {204}
    assert "host locks" not in caplog.text
    assert slots([host]) == {host: 0}
