"""A pass-through proxy in front of salt-api that can lose an answer on purpose.

salt-api cannot be made to do the work and then drop its answer; a real network path can. The
proxy forwards every request to salt-api; armed, it forwards the next job submission, lets
salt-api take it, then closes the connection without answering (what a dropped link does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


@dataclass
class SaltProxy:
    url: str
    lose_next_submission: bool = False
    lost: int = 0
    submissions: int = 0
    after_losing: Callable[[], None] | None = None
    # salt-api's answers to the submissions the proxy lost (what the client never saw).
    lost_answers: list[dict] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    # Held while `after_losing` runs: closing the proxy waits for it. The client gives up on
    # the lost answer after its read timeout and the test may end first; a callback still
    # restarting a minion with the lab's `up` then raced the next module's `up` (seen in CI:
    # two initdb on one directory).
    calling: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def salt_proxy(upstream: str) -> Iterator[SaltProxy]:
    """Serve on 127.0.0.1 (a free port), forwarding to `upstream`, until the block ends."""
    state = SaltProxy(url="")
    session = requests.Session()
    session.trust_env = False

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            answer = session.request(
                method, f"{upstream}{self.path}", data=body, headers=headers, timeout=60
            )
            submission = method == "POST" and self.path == "/" and b"local_async" in (body or b"")
            state.seen.append(f"{method} {self.path}")
            if submission:
                state.submissions += 1
                if state.lose_next_submission:
                    state.lose_next_submission = False
                    state.lost += 1
                    state.lost_answers.append(answer.json())
                    if state.after_losing:
                        with state.calling:
                            state.after_losing()
                    self.close_connection = True
                    self.connection.close()  # the work is done; its answer never arrives
                    return
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in (
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "content-encoding",
                ):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._forward("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._forward("POST")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        with state.calling:  # an `after_losing` still running ends first
            server.shutdown()
            server.server_close()
