"""Serve the lab platform over HTTPS on 127.0.0.1 with the lab's certificate."""

from __future__ import annotations

from pathlib import Path
from types import FrameType

import uvicorn

from opsflow.lab.api import create_app
from opsflow.lab.faults import FaultMiddleware
from opsflow.lab.tls import ensure_certificates


class _LabServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Stop at once: idle keep-alive clients (Prometheus, runbooks) would hold a graceful
        # shutdown open for as long as they stay connected.
        self.force_exit = True
        super().handle_exit(sig, frame)


def serve(
    directory: Path,
    port: int,
    token: str,
    prometheus_url: str | None,
    readonly_token: str | None = None,
) -> None:
    """Run the platform in the foreground until interrupted."""
    _, cert, key = ensure_certificates(directory / "tls")
    app = create_app(directory, token, prometheus_url, readonly_token=readonly_token)
    config = uvicorn.Config(
        FaultMiddleware(app, app.state.faults),  # outermost: faults bypass FastAPI's handlers
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )
    _LabServer(config).run()
