"""A server that refuses connections (nothing listens) is one short line, at once: the system,
its address and the cause, not urllib3's text with the URL-encoded query, and not 20 s of
retries (a timeout or a 5xx keeps its retries: tests/test_faults.py)."""

from __future__ import annotations

import socket
import time

import pytest

from opsflow.flows.cli.common import prefect_api_problem
from opsflow.opsapi import ConnectionFailed, OpsPlatformClient
from opsflow.opsapi.prometheus import PrometheusClient


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def test_prometheus_refusing_is_one_line_at_once(closed_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as failed:
        PrometheusClient(f"http://127.0.0.1:{closed_port}").query(
            '(node_load1) or label_replace(up, "x", "y", "", "")'
        )
    assert time.monotonic() - started < 2
    assert str(failed.value) == (
        f"cannot connect to Prometheus at http://127.0.0.1:{closed_port}: connection refused "
        f"(on GET http://127.0.0.1:{closed_port}/api/v1/query)"
    )


def test_the_platform_refusing_is_one_line_at_once(closed_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as failed:
        OpsPlatformClient(f"https://127.0.0.1:{closed_port}", "k-secret").list_hosts()
    assert time.monotonic() - started < 2
    assert str(failed.value).startswith(
        f"cannot connect to ops platform at https://127.0.0.1:{closed_port}: connection refused"
    )
    assert "k-secret" not in str(failed.value)


def test_a_prefect_api_that_is_down_or_mistyped_is_said_in_one_line(closed_port: int) -> None:
    down = f"http://127.0.0.1:{closed_port}/api"
    assert prefect_api_problem(down) == (
        f"the Prefect API at {down} does not answer: connection refused (start the server, or "
        "correct PREFECT_API_URL; unset it to use opsflow's local server)"
    )
    assert prefect_api_problem("127.0.0.1:4200/api") == (
        "PREFECT_API_URL='127.0.0.1:4200/api' is not an address: give http(s)://host:port/api"
    )
