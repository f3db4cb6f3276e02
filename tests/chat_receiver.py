"""A local HTTP receiver that records what it was sent (chat webhooks, a stand-in API) and
answers with the statuses it is given, then 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class ChatReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    statuses: list[int] = field(default_factory=list)  # one per request, in turn; then 200


@contextmanager
def chat_receiver() -> Iterator[ChatReceiver]:
    """Serve on 127.0.0.1 (a free port) until the block ends."""
    state = ChatReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            state.received.append(
                Received(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, body)
            )
            payload = json.dumps(state.answer).encode()
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
