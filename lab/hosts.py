"""Lab hosts: their directories, simulated load, and what the lab `systemctl` recorded.

A host's load is its base load until it is overloaded; after a service restart that succeeds
the load falls back linearly to the base over `RECOVERY_SECONDS`.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

# How long a restarted host's load takes to fall back (benchmarks shorten it).
RECOVERY_SECONDS = float(os.environ.get("OPSFLOW_LAB_RECOVERY_SECONDS", "3"))
DISK_SIZE_BYTES = 10 * 1024**3  # every lab host has a simulated 10 GiB root filesystem
LAB_BIN = Path(__file__).parent / "bin"


def host_dir(root: Path, hostname: str) -> Path:
    """The working directory of a lab host (created on demand)."""
    path = root / "hosts" / hostname
    (path / ".lab").mkdir(parents=True, exist_ok=True)
    return path


def base_load_for(hostname: str) -> float:
    """A calm, stable load between 0.2 and 1.2, the same for the same name."""
    return round(0.2 + random.Random(hostname).random(), 2)


def current_load(state: sqlite3.Row, now: float | None = None) -> float:
    """The simulated 1-minute load of a host at `now`."""
    now = time.time() if now is None else now
    base, overload = state["base_load"], state["overload"]
    if overload is None:
        return base
    settles = load_settles_at(state)
    if not settles:  # not restarted since it was overloaded
        return overload
    if now >= settles:
        return base
    elapsed = now - state["restarted_at"]
    return round(overload + (base - overload) * elapsed / RECOVERY_SECONDS, 3)


def load_settles_at(state: sqlite3.Row) -> float:
    """When a host's `current_load` stops moving with time alone (0.0: it does not move now,
    only a change of its state moves it)."""
    restarted = state["restarted_at"]
    if (
        state["overload"] is None
        or restarted is None
        or restarted < (state["overloaded_at"] or 0.0)
    ):
        return 0.0
    return restarted + RECOVERY_SECONDS


def disk_used(root: Path, hostname: str) -> float:
    """Apparent size of everything under the host's var/ (sparse files count in full)."""
    var = host_dir(root, hostname) / "var"
    return (
        float(sum(p.stat().st_size for p in var.rglob("*") if p.is_file())) if var.exists() else 0.0
    )


def fill_disk(root: Path, hostname: str, gigabytes: float, age_days: float = 10) -> Path:
    """Add an old compressed log of `gigabytes` (sparse: it takes no real space)."""
    logs = host_dir(root, hostname) / "var" / "log"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"app-{int(time.time() * 1000)}.log.gz"
    with path.open("wb") as handle:
        handle.truncate(int(gigabytes * 1024**3))
    old = time.time() - age_days * 86400
    os.utime(path, (old, old))
    return path


def host_flag(root: Path, hostname: str, flag: str) -> Path:
    """A flag file the lab `systemctl` reads: `fail-restart` (restarts fail) or `hang-restart`
    (restarts never return, and the platform applies no timeout: its agent is "lost")."""
    return host_dir(root, hostname) / ".lab" / flag


def set_host_flag(root: Path, hostname: str, flag: str, on: bool) -> None:
    """Raise or clear a host's flag."""
    path = host_flag(root, hostname, flag)
    if on:
        path.touch()
    else:
        path.unlink(missing_ok=True)


def read_systemctl_record(root: Path, hostname: str) -> tuple[int, float | None, bool]:
    """(restarts, time of the last restart, whether every service is up) from the host dir."""
    lab = host_dir(root, hostname) / ".lab"
    restarts_file = lab / "restarts"
    restarts, restarted_at = 0, None
    if restarts_file.exists():
        lines = restarts_file.read_text().splitlines()
        restarts = len(lines)
        if lines:
            restarted_at = float(lines[-1].split()[0])
    service_up = not any(p.read_text().strip() != "active" for p in lab.glob("service.*"))
    return restarts, restarted_at, service_up


def command_env(root: Path, hostname: str, ip: str) -> dict[str, str]:
    """The environment a job's command runs with on a lab host."""
    return {
        "PATH": f"{LAB_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(host_dir(root, hostname)),
        "LAB_HOST_DIR": str(host_dir(root, hostname)),
        "LAB_HOSTNAME": hostname,
        "LAB_HOST_IP": ip,
        "LANG": "C.UTF-8",
    }
