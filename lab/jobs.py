"""Running a job's command for real: `/bin/sh -c` in each host's directory, in parallel."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opsflow.lab.hosts import (
    LAB_BIN,
    command_env,
    disk_used,
    host_dir,
    host_flag,
    read_systemctl_record,
)
from opsflow.lab.store import LabStore

OUTPUT_LIMIT = 64 * 1024


class JobRunner:
    """Runs jobs in a thread pool, records per-host results and the overall status."""

    def __init__(self, store: LabStore, root: Path, workers: int = 32) -> None:
        self.store = store
        self.root = root
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lab-job")
        self._running: dict[str, dict[int, subprocess.Popen[bytes]]] = {}
        self._cancelled: set[str] = set()
        self._finished: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._noted = 0  # bytes of restarts.log already read
        systemctl = LAB_BIN / "systemctl"
        if not os.access(systemctl, os.X_OK):
            systemctl.chmod(0o755)
        # A platform restart loses the processes: jobs it left unfinished end as failed.
        for job_id in store.unfinished_jobs():
            self._finish(job_id, interrupted=True)

    def submit(
        self, job_id: str, command: str, timeout: int, hosts: dict[int, dict[str, Any]]
    ) -> None:
        with self._lock:
            self._running[job_id] = {}
            self._finished[job_id] = threading.Event()
        self.store.set_job(job_id, status="running")
        remaining = [len(hosts)]
        for host_id, host in hosts.items():
            future = self.pool.submit(self._run_one, job_id, host_id, host, command, timeout)
            future.add_done_callback(lambda _f: self._host_done(job_id, remaining))

    def cancel(self, job_id: str, wait: float = 10.0) -> None:
        """Kill what the job still runs and wait (up to `wait` s) until every host's result
        is recorded, so the job the cancel answers with is the job as it ends."""
        with self._lock:
            self._cancelled.add(job_id)
            processes = list(self._running.get(job_id, {}).values())
            finished = self._finished.get(job_id)
        for process in processes:
            _kill_group(process)
        if finished is not None:
            finished.wait(wait)

    def cancel_all(self) -> None:
        """Cancel every job still running (the lab's reset)."""
        with self._lock:
            running = list(self._running)
        for job_id in running:
            self.cancel(job_id)

    def _host_done(self, job_id: str, remaining: list[int]) -> None:
        with self._lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            self._finish(job_id)

    def _run_one(
        self, job_id: str, host_id: int, host: dict[str, Any], command: str, timeout: int
    ) -> None:
        if job_id in self._cancelled:
            self.store.set_result(job_id, host_id, status="cancelled", finished_at=time.time())
            return
        hostname = host["hostname"]
        started = time.time()
        self.store.set_result(job_id, host_id, status="running", started_at=started)
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=host_dir(self.root, hostname),
            env=command_env(self.root, hostname, host["ip"]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with self._lock:
            self._running[job_id][host_id] = process
            cancelled = job_id in self._cancelled
        if cancelled:  # the cancel came between the check above and the process starting
            _kill_group(process)
        status = "success"
        try:
            # A hanging host's agent is lost: no timeout applies (only a cancel ends it).
            stdout, stderr = process.communicate(
                timeout=None if host_flag(self.root, hostname, "hang-restart").exists() else timeout
            )
        except subprocess.TimeoutExpired:
            _kill_group(process)
            stdout, stderr = process.communicate()
            status = "timeout"
        if job_id in self._cancelled and status == "success" and process.returncode < 0:
            status = "cancelled"
        elif status == "success" and process.returncode != 0:
            status = "failed"
        self._sync_host(host_id, hostname)
        self.store.set_result(
            job_id,
            host_id,
            status=status,
            exit_code=process.returncode,
            stdout=stdout[:OUTPUT_LIMIT].decode("utf-8", "replace"),
            stderr=stderr[:OUTPUT_LIMIT].decode("utf-8", "replace"),
            finished_at=time.time(),
        )

    def sync_noted_restarts(self) -> None:
        """Restarts made outside the platform (by a Salt minion's command) are noted, one host
        name a line, in `restarts.log`: copy each noted host's record into its state."""
        log = self.root / "restarts.log"
        if not log.exists():
            return
        with self._lock:
            with log.open("rb") as handle:
                handle.seek(self._noted)
                fresh = handle.read()
            complete = fresh[: fresh.rfind(b"\n") + 1]
            self._noted += len(complete)
        for hostname in {line.strip() for line in complete.decode(errors="replace").splitlines()}:
            host = self.store.get_host_by_name(hostname) if hostname else None
            if host is not None:
                self._sync_host(int(host["id"]), hostname)

    def _sync_host(self, host_id: int, hostname: str) -> None:
        """Copy what the lab systemctl recorded into the host's state."""
        restarts, restarted_at, service_up = read_systemctl_record(self.root, hostname)
        self.store.set_state(
            host_id,
            restarts=restarts,
            restarted_at=restarted_at,
            service_up=int(service_up),
            disk_used=disk_used(self.root, hostname),
        )

    def _finish(self, job_id: str, interrupted: bool = False) -> None:
        job = self.store.get_job(job_id)
        if job is None:
            return
        if interrupted:
            for result in job["results"]:
                if result["status"] in ("pending", "running"):
                    self.store.set_result(
                        job_id,
                        result["host_id"],
                        status="failed",
                        stderr="lab platform restarted while the command ran",
                        finished_at=time.time(),
                    )
            job = self.store.get_job(job_id)
        statuses = {r["status"] for r in job["results"]}  # type: ignore[index]
        if job_id in self._cancelled:
            overall = "cancelled"
        elif statuses == {"success"}:
            overall = "success"
        elif statuses == {"timeout"}:
            overall = "timeout"
        elif "success" in statuses:
            overall = "partial"
        else:
            overall = "failed"
        self.store.set_job(job_id, status=overall, finished_at=time.time())
        with self._lock:
            self._running.pop(job_id, None)
            finished = self._finished.pop(job_id, None)
        if finished is not None:
            finished.set()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
