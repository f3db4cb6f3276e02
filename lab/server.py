"""Serve the lab platform over HTTPS on 127.0.0.1 with the lab's certificate."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from lab.api import create_app
from lab.tls import ensure_certificates


def serve(directory: Path, port: int, token: str, prometheus_url: str | None) -> None:
    """Run the platform in the foreground until interrupted."""
    _, cert, key = ensure_certificates(directory / "tls")
    app = create_app(directory, token, prometheus_url)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )
