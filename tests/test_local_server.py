"""opsflow's local Prefect server, for real: two `opsflow server start` at once end with one
server, which answers, keeps running after both commands, and stops on `opsflow server stop`.
(The stale pid file and the taken port: tests/unit/test_local_server.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, migrated_database


@pytest.fixture
def home(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Prefect home of its own (its database as migrated: no 20 s of migrations)."""
    prefect_home = tmp_path / "prefect-home"
    prefect_home.mkdir()
    shutil.copyfile(migrated_database(tmp_path_factory), prefect_home / "prefect.db")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(prefect_home), "OPSFLOW_SERVER_PORT": str(free_port())}
    yield env
    subprocess.run([sys.executable, "-m", "opsflow.flows", "server", "stop"], env=env, timeout=60)


def server_processes(env: dict[str, str]) -> list[str]:
    found = subprocess.run(
        ["pgrep", "-f", "prefect.server.api.server:create_app"], capture_output=True, text=True
    ).stdout.split()
    return [pid for pid in found if env["PREFECT_HOME"] in _environment(pid)]


def _environment(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_two_starts_at_once_end_with_one_server_that_outlives_them(home):
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "opsflow.flows", "server", "start"],
            env=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    said = [start.communicate(timeout=180)[0] for start in starts]

    assert [start.returncode for start in starts] == [0, 0], said
    assert sorted(line.split(":")[0] for line in said) == ["already running", "started"], said
    state = json.loads((Path(home["PREFECT_HOME"]) / "opsflow-server.json").read_text())
    assert all(f"(pid {state['pid']};" in line for line in said)  # the same server
    assert server_processes(home) == [str(state["pid"])]
    assert requests.get(f"http://127.0.0.1:{state['port']}/api/health", timeout=5).ok

    stopped = subprocess.run(
        [sys.executable, "-m", "opsflow.flows", "server", "stop"],
        env=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stopped.stdout.strip() == f"stopped (pid {state['pid']})"
    assert server_processes(home) == []
