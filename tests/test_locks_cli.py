"""`opsflow locks`: the host locks held now and who holds them; `release --stale` frees only
locks whose run has ended, never a live run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Cancelled, Running

from opsflow.tasks.host_locks import LOCKED_EVENT, host_locks, lock_name
from tests.cli_in_process import Done, opsflow_in_process
from tests.conftest import wait_until


def opsflow(*args: str) -> Done:
    """The command against the suite's Prefect API, in this process (it is called in loops)."""
    return opsflow_in_process(*args, api=PREFECT_API_URL.value())


@flow(name="hold-host-locks")
def hold(host_ids: list[str], until: threading.Event) -> None:
    with host_locks(host_ids) as (ours, _):
        assert ours == host_ids
        until.wait(60)


def active_slots(name: str) -> int:
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:  # not created yet: nobody has taken it
            return 0


def test_a_live_runs_locks_are_listed_and_never_released():
    host = f"locks-cli-{uuid.uuid4().hex[:8]}"
    done = threading.Event()
    holder = threading.Thread(target=hold, args=([host], done))
    holder.start()
    try:
        wait_until(lambda: active_slots(lock_name(host)) == 1, 30, "the run to take the lock")
        listed = wait_until(
            lambda: host in (out := opsflow("locks")).stdout and "RUNNING" in out.stdout and out,
            30,
            "opsflow locks to show the lock and its running holder",
        )
        line = next(row for row in listed.stdout.splitlines() if host in row)
        assert "RUNNING" in line and line.rstrip(" │").endswith("no")

        freed = opsflow("locks", "release", "--stale", "--ended-seconds-ago", "0")
        assert freed.returncode == 0, freed.stderr
        assert lock_name(host) not in freed.stdout
        assert active_slots(lock_name(host)) == 1  # a live run's lock stays held
    finally:
        done.set()
        holder.join(60)
    assert active_slots(lock_name(host)) == 0  # the run gave it back itself


def test_a_lock_left_held_by_an_ended_run_is_freed_by_release_stale():
    host = f"locks-cli-{uuid.uuid4().hex[:8]}"
    done = threading.Event()
    done.set()
    hold([host], done)  # takes the lock and gives it back
    # What a lost lease leaves (a server that kept leases in memory restarted): the slot is
    # taken and no lease will ever free it.
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(
            lock_name(host), GlobalConcurrencyLimitUpdate(active_slots=1)
        )

    def listed_with_its_run() -> str | None:  # the run's event reaches the server in a batch
        listed = opsflow("locks")
        line = next(row for row in listed.stdout.splitlines() if host in row)
        return line if "COMPLETED" in line else None

    wait_until(listed_with_its_run, 30, "the lock listed with its ended run")

    too_soon = opsflow("locks", "release", "--stale")  # ended under 90 s ago: its lease may live
    assert lock_name(host) not in too_soon.stdout
    assert active_slots(lock_name(host)) == 1

    freed = opsflow("locks", "release", "--stale", "--ended-seconds-ago", "0")
    assert freed.returncode == 0, freed.stderr
    assert f"freed {lock_name(host)}" in freed.stdout
    assert "ended COMPLETED" in freed.stdout
    assert active_slots(lock_name(host)) == 0


def test_release_without_stale_is_refused():
    answer = opsflow("locks", "release")
    assert answer.returncode == 2
    assert "--stale" in answer.stdout + answer.stderr


def test_a_prefect_server_that_is_down_is_one_line_not_a_traceback():
    answer = subprocess.run(
        [sys.executable, "-m", "opsflow.flows.cli.main", "locks"],
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 1
    assert "Traceback" not in answer.stdout + answer.stderr
    assert (
        "opsflow locks: the Prefect API at http://127.0.0.1:9/api does not answer: connection "
        "refused"
    ) in answer.stdout


@pytest.mark.xdist_group("servers")  # with the other `local_prefect` tests (test_terminal_approval)
def test_a_lock_no_lease_holds_is_freed_saying_why_and_a_leased_one_is_kept(local_prefect):
    """The case of a run killed with the temporary server of earlier versions: the lock's slot
    is taken in the database, its lease died with that server, its run is still marked
    Running. On opsflow's local server (its leases are files) `release --stale` sees that no
    lease holds it, frees it, says why and marks the run Crashed; a leased lock stays."""
    server = json.loads((Path(local_prefect["PREFECT_HOME"]) / "opsflow-server.json").read_text())
    api = f"http://127.0.0.1:{server['port']}/api"
    orphan, leased = (lock_name(f"gone-{uuid.uuid4().hex[:8]}") for _ in range(2))
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        runs = [
            client.create_flow_run(hold, name=f"holder-{n}", state=Running()).id for n in (1, 2)
        ]
        for name in (orphan, leased):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        client.update_global_concurrency_limit(
            orphan, GlobalConcurrencyLimitUpdate(active_slots=1)
        )  # as the dead server left it: a slot taken, no lease
        lease = client.increment_concurrency_slots_with_lease(
            names=[leased], slots=1, mode="concurrency", lease_duration=300
        ).json()["lease_id"]
    try:
        _release_stale_frees_the_orphan_only(local_prefect, api, orphan, leased, runs)
    finally:  # the server is the session's: no lock held, no run left Running for later tests
        with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(lease)
            client.set_flow_run_state(runs[1], Cancelled(), force=True)


def _release_stale_frees_the_orphan_only(
    local_prefect: dict[str, str], api: str, orphan: str, leased: str, runs: list[uuid.UUID]
) -> None:
    for name, run_id in zip((orphan, leased), runs, strict=True):
        said = requests.post(f"{api}/events", json=[locked_event(name, run_id)], timeout=10)
        assert said.ok, said.text

    def holders_known() -> bool:
        listed = subprocess.run(
            [sys.executable, "-m", "opsflow.flows", "locks"],
            env=local_prefect,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        return "holder-1" in listed and "holder-2" in listed

    wait_until(holders_known, 30, "the lock events to be stored")
    freed = subprocess.run(
        [sys.executable, "-m", "opsflow.flows", "locks", "release", "--stale"],
        env=local_prefect,
        capture_output=True,
        text=True,
        timeout=60,
    )

    out = " ".join(freed.stdout.split())
    assert freed.returncode == 0, freed.stdout + freed.stderr
    assert (
        f"freed {orphan} (host {orphan.removeprefix('opsflow-host-')}): no lease holds it: the "
        "server that granted it is gone (its run holder-1 is still marked RUNNING" in out
    )
    assert leased not in out
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(orphan).active_slots == 0
        assert client.read_global_concurrency_limit_by_name(leased).active_slots == 1
        assert client.read_flow_run(runs[0]).state.type == StateType.CRASHED
        assert client.read_flow_run(runs[1]).state.type == StateType.RUNNING


def locked_event(name: str, run_id: uuid.UUID) -> dict[str, Any]:
    """The `opsflow.host.locked` event a run emits when it takes a lock, two minutes ago."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": (datetime.now(timezone.utc) - timedelta(minutes=2)).isoformat(),
        "event": LOCKED_EVENT,
        "resource": {"prefect.resource.id": f"opsflow.lock.{name}", "prefect.resource.name": name},
        "related": [
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.role": "flow-run",
            }
        ],
        "payload": {"flow_run_id": str(run_id)},
    }
