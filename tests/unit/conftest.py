"""The fast layer: no server, no lab, seconds in all. `.venv/bin/pytest tests/unit`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """Overrides the suite's real Prefect API: unit tests never talk to a server."""
    yield
