"""Prefect's high-availability topology, as the lab runs it with `--prefect ha`: two API
servers (no services) behind a balancer, their background services in a process of their own,
PostgreSQL, and Redis for messages, event ordering and leases. One API server is killed: host
locks and alert-driven runs carry on through the other."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from opsflow.lab.stack import up
from tests.conftest import Lab, wait_until
from tests.prefect_lab import (
    alert_trigger,
    finished_runs,
    ha_lab,
    held,
    lab_server,
    restart_runs,
    start_restart,
)

__all__ = ["ha_lab"]  # the module's fixture

# Its first test builds the HA set (about 90 s) and rides out a dead API server.
pytestmark = pytest.mark.timeout(600)


def kill_api_server(lab: Lab, name: str) -> None:
    entry = json.loads((lab.config.dir / "processes.json").read_text())[name]
    os.killpg(entry["pid"], signal.SIGKILL)


def test_a_dead_api_server_stops_neither_locks_nor_alert_driven_runs(ha_lab: Lab) -> None:
    alert_trigger(ha_lab, enabled=False)
    hosts = ["lab-web-01", "lab-db-02", "lab-web-03", "lab-db-04"]
    ha_lab.overload(8.0, *hosts)
    known = {r.id for r in restart_runs(ha_lab)}
    first = start_restart(ha_lab, hosts)
    second = start_restart(ha_lab, hosts[1:3])  # overlaps: the locks must keep them apart
    wait_until(lambda: ha_lab.admin.restarts(), 120, "the first restart")

    kill_api_server(ha_lab, "prefect-server-a")  # mid-rollout

    ended = finished_runs(ha_lab, known, 2, timeout=240)
    assert {r.id for r in ended} == {first.id, second.id}
    assert all(r.state.is_completed() for r in ended), [r.state.message for r in ended]
    assert ha_lab.admin.restarts() == dict.fromkeys(hosts, 1)
    wait_until(lambda: not held(ha_lab, hosts), 150, "every lock to be free")

    # With server A still dead, an alert becomes a run and a verified fix.
    ha_lab.reset(10)
    alert_trigger(ha_lab, enabled=True)
    known = {r.id for r in restart_runs(ha_lab)}
    started = time.time()
    ha_lab.overload(8.0, "lab-web-05")
    [run] = finished_runs(ha_lab, known, 1)
    print(
        f"HA, one API server dead: overload to verified fix {run.end_time.timestamp() - started:.1f}s"
    )
    assert run.state.is_completed(), run.state.message
    assert run.parameters["policy"]["selector"] == {"hostnames": ["lab-web-05"]}
    assert ha_lab.admin.restarts() == {"lab-web-05": 1}
    with lab_server(ha_lab) as client:
        assert client.api_healthcheck() is None  # answered, through the balancer, by server B

    up(ha_lab.config, save_blocks=False)  # server A back
