"""The host-lock calls' answer to a busy Prefect server on SQLite: a 503 (a write that lost a
race and was rolled back, so nothing was taken) is retried within a second instead of after
Prefect's 2 s; every other failure gets Prefect's own client and retries, as before.

The 503 comes from a real server only under a race of writes that no test can time, so the
Prefect client is replaced here by a call that answers as the server would."""

from __future__ import annotations

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from opsflow.tasks.host_locks import BUSY_BACKOFF_SECONDS, _without_stall

URL = "http://127.0.0.1:9/api/v2/concurrency_limits/increment-with-lease"


def server(*answers: int | type[Exception]):
    """A lease call answering `answers` in turn (then 200); it records, per call, how many
    retries Prefect's client would have made of it (0: opsflow's quick retries)."""
    retries: list[int] = []

    def call(client: object) -> httpx.Response:
        retries.append(PREFECT_CLIENT_MAX_RETRIES.value())
        request = httpx.Request("POST", URL)
        answer = answers[len(retries) - 1] if len(retries) <= len(answers) else 200
        if isinstance(answer, type):
            raise answer("connection refused", request=request)
        response = httpx.Response(answer, request=request, json={})
        if answer >= 400:
            raise httpx.HTTPStatusError(str(answer), request=request, response=response)
        return response

    return call, retries


@pytest.fixture(autouse=True)
def _no_server():
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        yield


def test_a_busy_503_is_retried_at_once_and_the_locks_are_taken():
    call, retries = server(503, 503)

    assert _without_stall(call).status_code == 200
    assert retries == [0, 0, 0]


def test_a_503_that_lasts_goes_on_to_prefects_own_retries():
    call, retries = server(*[503] * len(BUSY_BACKOFF_SECONDS))

    assert _without_stall(call).status_code == 200
    assert retries == [0] * len(BUSY_BACKOFF_SECONDS) + [PREFECT_CLIENT_MAX_RETRIES.value()]
    assert retries[-1] > 0


def test_a_connection_error_goes_to_prefects_client_as_before():
    call, retries = server(httpx.ConnectError)

    assert _without_stall(call).status_code == 200
    assert retries == [0, PREFECT_CLIENT_MAX_RETRIES.value()]


@pytest.mark.parametrize("status", [423, 400, 404, 500])
def test_any_other_answer_is_the_callers_to_judge_and_never_repeated(status):
    call, retries = server(status)

    with pytest.raises(httpx.HTTPStatusError) as refused:
        _without_stall(call)
    assert refused.value.response.status_code == status
    assert retries == [0]
