"""The host-lock calls' answer to a busy Prefect server on SQLite: a 503 (a write that lost a
race and was rolled back, so nothing was taken) is retried within a second, never after one of
Prefect's client's sleeps (2 s and more, even with PREFECT_CLIENT_MAX_RETRIES=0); a 503 that
lasts gets Prefect's own client and retries, as before.

The 503 comes from a real server only under a race of writes that no test can time, so a small
HTTP server stands in for the Prefect API here and answers as it would. Pauses are recorded, not
slept."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLIENT_CSRF_SUPPORT_ENABLED,
    temporary_settings,
)

from opsflow.tasks.host_locks import BUSY_BACKOFF_SECONDS, INCREMENT, _without_stall

BODY = {"names": ["opsflow-host-1"], "slots": 1, "mode": "concurrency", "lease_duration": 60}


class Api:
    """Answers each POST with the next status of `answers` (then 200); keeps what it got."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.got: list[tuple[str, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                api.got.append((self.path, json.loads(self.rfile.read(length))))
                status = api.answers.pop(0) if api.answers else 200
                payload = b'{"detail": "why"}' if status >= 400 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def call(api: Api) -> httpx.Response:
    # this stand-in has no CSRF token to hand out (a Prefect server off by default does not ask)
    with temporary_settings({PREFECT_API_URL: api.url, PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False}):
        return _without_stall(INCREMENT, BODY)


def test_a_busy_503_is_retried_at_once_and_the_locks_are_taken(pauses):
    api = Api(503, 503)

    assert call(api).status_code == 200
    assert api.got == [(f"/api{INCREMENT}", BODY)] * 3
    assert pauses == list(BUSY_BACKOFF_SECONDS[:2])  # no pause of Prefect's client (>= 1 s)


def test_a_503_that_lasts_goes_on_to_prefects_own_retries(pauses):
    quick = len(BUSY_BACKOFF_SECONDS) + 1  # tries, with a pause between each two
    api = Api(*[503] * (quick + 1))

    assert call(api).status_code == 200
    assert len(api.got) == quick + 2  # then Prefect's client: a 503, its pause, a 200
    assert pauses[: len(BUSY_BACKOFF_SECONDS)] == list(BUSY_BACKOFF_SECONDS)
    assert len(pauses) == len(BUSY_BACKOFF_SECONDS) + 1 and pauses[-1] >= 1  # Prefect's own


def test_a_server_that_does_not_answer_is_prefects_clients_error(pauses):
    api = Api()
    api.server.shutdown()
    api.server.server_close()

    with pytest.raises(httpx.ConnectError):
        call(api)


@pytest.mark.parametrize("status", [423, 400, 404, 500])
def test_any_other_answer_is_the_callers_to_judge_and_never_repeated(pauses, status):
    api = Api(status)

    with pytest.raises(httpx.HTTPStatusError) as refused:
        call(api)
    assert refused.value.response.status_code == status
    assert "'detail': 'why'" in str(refused.value)  # the server's detail, as Prefect words it
    assert len(api.got) == 1 and pauses == []
