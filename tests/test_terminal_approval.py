"""`opsflow run restart-overloaded-hosts --approval` on a terminal, with no Prefect server of the
operator's own: the command shows the plan and asks right there; the operator types the plan
digest's first characters to approve. Driven through a real pseudo-terminal."""

from __future__ import annotations

import getpass
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

# With every other test of opsflow's local server (`local_prefect`, made once per shard) on the
# shard of the topology and Salt tests: the other one is the longer (CI, measured).
pytestmark = pytest.mark.xdist_group("servers")

ARGS = [
    "run",
    "restart-overloaded-hosts",
    "--platform-block",
    "lab",
    "--prometheus-block",
    "lab",
    "--approval",
    "--batch-size",
    "1",
    "--poll-seconds",
    "0.5",
    "--verify-window-seconds",
    "30",
]


class Terminal:
    """The command on a pseudo-terminal: what it printed, and typing into it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = ""

    def read_until(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, plain(self.output))
            if found:
                return found
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the command ended
                    break
        self.kill()
        pytest.fail(f"no {pattern!r} within {timeout}s; the terminal showed:\n{self.output}")

    def kill(self) -> None:
        """Stop the command and what it started (never the local server), whatever happened."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\n")

    def finish(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    break
        try:  # the terminal closes before the process is gone (its exit handlers run after)
            self.process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running after {timeout}s; the terminal showed:\n{self.output}")
        os.close(self.master)
        return self.process.returncode


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def opsflow_on_a_terminal(env: dict[str, str], *extra: str) -> Terminal:
    return Terminal([sys.executable, "-m", "opsflow.flows", *ARGS, *extra], env)


def test_typing_the_digest_approves_and_the_host_is_restarted(fresh_lab, local_prefect):
    fresh_lab.overload(8.0, "lab-web-03")

    terminal = opsflow_on_a_terminal(local_prefect)
    prompt = terminal.read_until(r"Type (\w{6}) to approve", 120)
    assert fresh_lab.jobs() == []  # nothing happens before the answer
    assert "lab-web-03" in plain(terminal.output)  # the plan is shown
    terminal.type(prompt.group(1))
    code = terminal.finish()

    output = plain(terminal.output)
    assert code == 0, output
    assert "completed: 1 host restarted and verified" in output
    assert re.search(
        rf"approval: approved plan {prompt.group(1)}\w+ by {getpass.getuser()} on the terminal "
        r"of \S+ at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: approved on the terminal",
        " ".join(output.split()),
    ), output
    assert fresh_lab.admin.restarts() == {"lab-web-03": 1}
    assert "Traceback" not in output


def test_anything_else_rejects_and_nothing_is_restarted(fresh_lab, local_prefect):
    fresh_lab.overload(8.0, "lab-web-03")

    terminal = opsflow_on_a_terminal(local_prefect)
    terminal.read_until(r"Type (\w{6}) to approve", 120)
    terminal.type("yes")
    code = terminal.finish()

    output = plain(terminal.output)
    assert code == 1, output
    assert "aborted: not approved: rejected on the terminal (typed 'yes')" in output
    assert fresh_lab.jobs() == []


def test_no_answer_in_time_rejects_with_that_reason(fresh_lab, local_prefect):
    fresh_lab.overload(8.0, "lab-web-03")

    terminal = opsflow_on_a_terminal(local_prefect, "--approval-timeout-seconds", "2")
    terminal.read_until(r"Type (\w{6}) to approve", 120)
    code = terminal.finish()

    output = plain(terminal.output)
    assert code == 1, output
    assert "aborted: not approved: no answer within 2s" in output
    assert fresh_lab.jobs() == []


def server_state(env: dict[str, str]) -> dict[str, int]:
    return json.loads((Path(env["PREFECT_HOME"]) / "opsflow-server.json").read_text())


def test_the_local_server_outlives_the_commands_and_is_theirs_alone(local_prefect):
    """The server `lab up` started is still up after it (and after the runs, in whatever order
    they ran), `opsflow server status` says where, and its database is private."""
    state = server_state(local_prefect)
    assert Path(f"/proc/{state['pid']}").exists()
    health = requests.get(f"http://127.0.0.1:{state['port']}/api/health", timeout=5)
    assert health.ok
    status = subprocess.run(
        [sys.executable, "-m", "opsflow.flows", "server", "status"],
        env=local_prefect,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running: http://127.0.0.1:{state['port']} (pid {state['pid']}), answering" in (
        status.stdout
    )
    database = Path(local_prefect["PREFECT_HOME"]) / "prefect.db"
    assert oct(database.stat().st_mode & 0o777) == "0o600"
