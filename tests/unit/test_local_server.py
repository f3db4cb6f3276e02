"""opsflow's local Prefect server, the cases that need no server: a stale pid file, a port held
by another program, a mistyped port; each one line from `opsflow server ...`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsflow.flows.cli.main import app
from opsflow.flows.services.local_server import (
    SERVER_SETTINGS,
    WRITE_BATCHING,
    LocalServer,
    ServerError,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return tmp_path


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def opsflow(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, " ".join(done.output.split())


def test_a_stale_pid_file_is_said_and_cleared(home: Path, dead_pid: int) -> None:
    (home / "opsflow-server.json").write_text(json.dumps({"pid": dead_pid, "port": 4280}))

    code, said = opsflow("server", "status")
    assert code == 1
    assert said == (
        f"not running: its pid file names process {dead_pid}, which is gone (a crash or a "
        "reboot); `opsflow server start` starts it again"
    )

    code, said = opsflow("server", "stop")
    assert (code, said) == (
        0,
        f"not running (process {dead_pid} was already gone; its pid file removed)",
    )
    assert not (home / "opsflow-server.json").exists()


def test_a_pid_reused_by_another_program_is_not_taken_for_the_server(home: Path) -> None:
    """The pid file names a live process that is not a Prefect server (a pid reused after a
    reboot): not running, and `stop` signals nothing."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        (home / "opsflow-server.json").write_text(json.dumps({"pid": other.pid, "port": 4280}))
        assert opsflow("server", "status")[0] == 1
        assert opsflow("server", "stop")[0] == 0
        assert other.poll() is None  # still alive: not ours to stop
        other.kill()


def test_a_port_held_by_another_program_is_refused_in_one_line(home: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]

        with pytest.raises(ServerError) as refused:
            LocalServer(port=port).start()
        code, said = opsflow("server", "start", "--port", str(port))

    assert str(refused.value).startswith(f"port {port} on 127.0.0.1 is taken by another program")
    assert code == 1
    assert said.startswith(f"opsflow server start: port {port} on 127.0.0.1 is taken by another")
    assert "OPSFLOW_SERVER_PORT" in said
    assert not (home / "opsflow-server.json").exists()  # nothing started, nothing recorded


def test_a_mistyped_port_variable_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSFLOW_SERVER_PORT", "42OO")

    code, said = opsflow("server", "status")

    assert code == 1
    assert (
        said
        == "opsflow server status: OPSFLOW_SERVER_PORT='42OO' is not a port: give a number 1-65535"
    )


def test_every_server_setting_is_one_prefect_reads() -> None:
    """A setting Prefect does not know is ignored without a word: each one the local server is
    started with must reach Prefect's settings with the value given (a rename upstream would
    otherwise bring back a commit per task-run state, and the busy 503s with it)."""
    script = (
        "import json; from prefect.settings import get_current_settings as s; "
        "t = s().server.services; print(json.dumps([t.task_run_recorder.batch_size, "
        "t.task_run_recorder.flush_interval, t.event_persister.batch_size, "
        "t.event_persister.flush_interval, s().server.concurrency.lease_storage, "
        "s().server.analytics_enabled]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    answer = subprocess.run(
        [sys.executable, "-c", script],
        env=env | SERVER_SETTINGS,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(answer.stdout) == [
        int(WRITE_BATCHING["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"]),
        float(WRITE_BATCHING["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL"]),
        int(WRITE_BATCHING["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE"]),
        float(WRITE_BATCHING["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL"]),
        SERVER_SETTINGS["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"],
        False,
    ]
    assert int(WRITE_BATCHING["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"]) > 1
