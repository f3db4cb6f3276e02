"""The host-lock calls' answer to a busy Prefect server on SQLite: a 503 (a write that lost a
race and was rolled back, so nothing was taken) is retried within a second, never after one of
Prefect's client's sleeps (2 s and more, even with PREFECT_CLIENT_MAX_RETRIES=0); a 503 that
lasts gets Prefect's own client and retries, as before.

The 503 comes from a real server only under a race of writes that no test can time, so a small
HTTP server stands in for the Prefect API here and answers as it would. Pauses are recorded, not
slept."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLIENT_CSRF_SUPPORT_ENABLED,
    temporary_settings,
)

from opsflow.tasks.host_locks import BUSY_BACKOFF_SECONDS, INCREMENT, without_stall
from tests.chat_receiver import ChatReceiver, chat_receiver

BODY = {"names": ["opsflow-host-1"], "slots": 1, "mode": "concurrency", "lease_duration": 60}


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def api() -> Iterator[ChatReceiver]:
    with chat_receiver() as receiver:
        receiver.answer = {"detail": "why"}
        yield receiver


def call(api: ChatReceiver) -> httpx.Response:
    # this stand-in has no CSRF token to hand out (a Prefect server off by default does not ask)
    settings = {PREFECT_API_URL: f"{api.url}/api", PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False}
    with temporary_settings(settings):
        return without_stall(INCREMENT, BODY)


def got(api: ChatReceiver) -> list[tuple[str, dict]]:
    return [(request.path, request.body) for request in api.received]


def test_a_busy_503_is_retried_at_once_and_the_locks_are_taken(api, pauses):
    api.statuses = [503, 503]

    assert call(api).status_code == 200
    assert got(api) == [(f"/api{INCREMENT}", BODY)] * 3
    assert pauses == list(BUSY_BACKOFF_SECONDS[:2])  # no pause of Prefect's client (>= 1 s)


def test_a_503_that_lasts_goes_on_to_prefects_own_retries(api, pauses):
    quick = len(BUSY_BACKOFF_SECONDS) + 1  # tries, with a pause between each two
    api.statuses = [503] * (quick + 1)

    assert call(api).status_code == 200
    assert len(got(api)) == quick + 2  # then Prefect's client: a 503, its pause, a 200
    assert pauses[: len(BUSY_BACKOFF_SECONDS)] == list(BUSY_BACKOFF_SECONDS)
    assert len(pauses) == len(BUSY_BACKOFF_SECONDS) + 1 and pauses[-1] >= 1  # Prefect's own


def test_a_server_that_does_not_answer_is_prefects_clients_error(pauses):
    with chat_receiver() as gone:
        pass  # stopped: its port answers no more

    with pytest.raises(httpx.ConnectError):
        call(gone)


@pytest.mark.parametrize("status", [423, 400, 404, 500])
def test_any_other_answer_is_the_callers_to_judge_and_never_repeated(api, pauses, status):
    api.statuses = [status]

    with pytest.raises(httpx.HTTPStatusError) as refused:
        call(api)
    assert refused.value.response.status_code == status
    assert "'detail': 'why'" in str(refused.value)  # the server's detail, as Prefect words it
    assert len(got(api)) == 1 and pauses == []
