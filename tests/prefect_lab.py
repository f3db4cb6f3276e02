"""The lab with its Prefect topology (`--prefect postgres --workers 2`), for the modules that
need a real server with workers: a module fixture (its alert trigger would act on other
tests' overloads, so it runs only while such a module does) and helpers to read that server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.settings import PREFECT_API_URL, temporary_settings

from opsflow.lab.prefect_stack import PROCESSES, postgres_dir
from opsflow.lab.stack import down, up
from tests.conftest import Lab, wait_until

RESTART = "restart-overloaded-hosts"


@pytest.fixture(scope="module")
def prefect_lab(lab: Lab) -> Iterator[Lab]:
    """The lab with `--prefect postgres --workers 2`, for this module only (its alert trigger
    would act on other tests' overloads)."""
    lab.reset(10)
    lab.config.prefect, lab.config.workers = "postgres", 2
    try:
        up(lab.config, save_blocks=False)
        yield lab
    finally:
        down(lab.config, only=PROCESSES)
        shutil.rmtree(postgres_dir(lab.config), ignore_errors=True)
        lab.config.prefect = "none"
        lab.config.save()


@contextmanager
def lab_server(lab: Lab) -> Iterator[SyncPrefectClient]:
    """A client of the lab's own Prefect server (not the suite's)."""
    with temporary_settings({PREFECT_API_URL: lab.config.prefect_api_url}):
        with get_client(sync_client=True) as client:
            yield client


def restart_runs(lab: Lab) -> list[Any]:
    with lab_server(lab) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[RESTART]))
        )


def finished_runs(lab: Lab, known: set[Any], count: int, timeout: float = 120) -> list[Any]:
    """Wait for `count` restart runs not in `known` to reach a final state."""

    def done() -> list[Any] | None:
        new = [r for r in restart_runs(lab) if r.id not in known]
        final = [r for r in new if r.state and r.state.is_final()]
        return final if len(final) >= count else None

    return wait_until(done, timeout, f"{count} alert-triggered restart run(s) to finish")
