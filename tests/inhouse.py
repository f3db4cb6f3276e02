"""The example of a user's own backend (examples/inhouse_backend), ready for a test: its small
API server in front of the session's lab, and its block saved as "inhouse"."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import uvicorn
from inhouse_backend import InHousePlatform
from inhouse_backend.server import create_app

from opsflow.blocks import OpsPlatform
from tests.conftest import Lab, free_ports, wait_until

BLOCK = "in-house-platform/inhouse"
API_KEY = "inhouse-key-5f0c2a9e41"


@pytest.fixture(scope="session")
def inhouse_api(lab: Lab) -> Iterator[str]:
    """The in-house API's URL: its own paths and states, the lab's hosts and jobs behind them;
    the block "inhouse" saved with its key."""
    backend = OpsPlatform.load("lab").get_client()
    port = free_ports().platform
    server = uvicorn.Server(
        uvicorn.Config(create_app(backend, API_KEY), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the in-house API to start")
    url = f"http://127.0.0.1:{port}"
    InHousePlatform(url=url, api_key=API_KEY).save("inhouse", overwrite=True)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        backend.close()
