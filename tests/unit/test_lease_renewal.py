"""Host locks' leases are renewed while held, and not the moment they are granted (Prefect's own
renewal writes once at the start: one more API write per lock taken, for a lease just granted).
A renewal the server refuses because the lease ran out stops and says the locks are lost; any
other failure is tried again.

A small HTTP server stands in for the Prefect API: leases shorter than a real server's 60 s
minimum make the renewals come within the test."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLIENT_CSRF_SUPPORT_ENABLED,
    PREFECT_CLIENT_MAX_RETRIES,
    temporary_settings,
)

import opsflow.tasks.host_locks as host_locks
from tests.chat_receiver import ChatReceiver, chat_receiver

LEASE = uuid4()
NAME = "opsflow-host-1"
RENEW = f"/api/v2/concurrency_limits/leases/{LEASE}/renew"


@pytest.fixture
def api() -> Iterator[ChatReceiver]:
    with chat_receiver() as receiver:
        settings = {
            PREFECT_API_URL: f"{receiver.url}/api",
            PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False,
            PREFECT_CLIENT_MAX_RETRIES: 0,
        }
        with temporary_settings(settings):
            yield receiver


@contextmanager
def held(api: ChatReceiver, lease_seconds: float) -> Iterator[None]:
    """Host lock 1 held (taken from the stand-in, given back at the end)."""
    api.answer = {
        "lease_id": str(LEASE),
        "limits": [{"id": str(uuid4()), "name": NAME, "limit": 1}],
    }
    with host_locks._concurrency([NAME], 0, lease_seconds, None):
        yield


def renewals(api: ChatReceiver) -> list[tuple[str, dict]]:
    return [(r.path, r.body) for r in api.received if r.path.endswith("/renew")]


def renewal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"opsflow-lease-{LEASE}"]


def until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_lease_given_back_before_its_renewal_is_due_is_never_renewed(api):
    with held(api, 60):
        time.sleep(0.3)  # Prefect's own renewal has written by now

    assert [r.path for r in api.received] == [
        "/api/v2/concurrency_limits/increment-with-lease",
        "/api/v2/concurrency_limits/decrement-with-lease",
    ]
    assert renewal_threads() == []


def test_a_lease_held_is_renewed_each_three_quarters_of_its_duration(api):
    with held(api, 0.2):
        until(lambda: len(renewals(api)) >= 2)

    assert renewals(api)[:2] == [(RENEW, {"lease_duration": 0.2})] * 2
    assert renewal_threads() == []


@pytest.mark.parametrize("gone", [404, 410])
def test_a_lease_that_ran_out_is_said_lost_and_no_longer_renewed(api, caplog, gone):
    with held(api, 0.2):
        api.statuses = [gone]
        until(lambda: renewals(api) and not renewal_threads())

    assert len(renewals(api)) == 1
    assert "host locks lost: their lease ran out" in caplog.text


def test_a_failed_renewal_is_tried_again_soon_and_said_once(api, caplog, monkeypatch):
    monkeypatch.setattr(host_locks, "RENEW_RETRY_SECONDS", 0.05)
    with held(api, 2), caplog.at_level(logging.WARNING):  # renewals due every 1.5 s
        api.statuses = [500, 500]
        until(lambda: len(renewals(api)) >= 1)
        failed_at = time.monotonic()
        until(lambda: len(renewals(api)) >= 3)
        again_after = time.monotonic() - failed_at

    assert again_after < 1.0  # the retries' pace, not the next renewal's 1.5 s
    assert caplog.text.count("host locks' lease not renewed yet") == 1
    assert renewal_threads() == []
