"""Supervision of the lab's processes: start one in its own session, record it (PID and kernel
start time, in processes.json), wait until it is ready, tell whether it still runs, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from opsflow.lab.config import LabConfig

STOP_GRACE_SECONDS = 20.0  # after SIGTERM, before SIGKILL: a salt-minion takes 7-10 s


def _state_path(config: LabConfig) -> Path:
    return config.dir / "processes.json"


def _processes(config: LabConfig) -> dict[str, dict[str, Any]]:
    path = _state_path(config)
    return json.loads(path.read_text()) if path.exists() else {}


def _save_processes(config: LabConfig, processes: dict[str, dict[str, Any]]) -> None:
    _state_path(config).write_text(json.dumps(processes, indent=2))


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _alive(entry: dict[str, Any]) -> bool:
    """The recorded process still runs and is the one we started (not a reused PID)."""
    return _start_time(entry["pid"]) == entry.get("started")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _start(
    config: LabConfig, name: str, argv: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    logs = config.dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=config.dir,
            env={**os.environ, **(env or {})},
        )
    return {
        "pid": process.pid,
        "started": _start_time(process.pid),
        "argv": argv,
        "log": str(logs / f"{name}.log"),
    }


def _wait(name: str, check: Any, entry: dict[str, Any], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(entry):
            tail = Path(entry["log"]).read_text(errors="replace")[-1500:]
            raise RuntimeError(f"lab: {name} exited during start-up; its log ends:\n{tail}")
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"lab: {name} did not become ready in {seconds:g}s (log: {entry['log']})")


def _need_binary(name: str, hint: str) -> str:
    found = shutil.which(name) or (
        str(Path(sys.executable).parent / name)
        if (Path(sys.executable).parent / name).exists()
        else None
    )
    if not found:
        raise RuntimeError(f"lab: {name} is not installed: {hint}")
    return found


def _ensure(
    config: LabConfig,
    processes: dict[str, dict[str, Any]],
    name: str,
    port: int,
    argv: list[str],
    ready: Any,
    env: dict[str, str] | None = None,
) -> bool:
    """Start `name` unless our recorded process already runs; True when freshly started."""
    entry = processes.get(name)
    if entry and _alive(entry):
        return False
    if not _port_free(port):
        raise RuntimeError(
            f"lab: port {port} for {name} is taken by another program; "
            f"choose other ports (opsflow lab up --help)"
        )
    entry = _start(config, name, argv, env)
    processes[name] = entry
    _save_processes(config, processes)
    _wait(name, ready, entry)
    return True


def stop_processes(entries: list[dict[str, Any]], grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop recorded processes: SIGTERM to each one's process group, all at once; whatever still
    runs after `grace` seconds gets SIGKILL; return once every one is gone. (A salt-minion can
    ignore SIGTERM for good, saltstack/salt#57934: never wait on it without a deadline.)

    >>> stop_processes([_processes(config)["salt-minion-lab-web-07"]])  # doctest: +SKIP
    """
    running = [e for e in entries if _alive(e)]
    for signum, seconds in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for entry in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(entry["pid"], signum)
        deadline = time.monotonic() + seconds
        while (running := [e for e in running if _group_alive(e)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not running:
            return
    raise RuntimeError(f"lab: pids {[e['pid'] for e in running]} survived SIGKILL")


def _group_alive(entry: dict[str, Any]) -> bool:
    """The recorded process, or any process of its group (a minion's workers), still runs."""
    if _alive(entry):
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(group) == entry["pid"] and state != "Z":
                return True
    return False
