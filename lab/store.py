"""The lab platform's persistent state: hosts, their simulated state, jobs, results (SQLite)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS hosts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hostname TEXT NOT NULL UNIQUE,
    ip TEXT NOT NULL UNIQUE,
    os TEXT,
    owner TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS host_state (
    host_id INTEGER PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
    base_load REAL NOT NULL,
    cpus INTEGER NOT NULL DEFAULT 4,
    overload REAL,
    overloaded_at REAL,
    restarted_at REAL,
    restarts INTEGER NOT NULL DEFAULT 0,
    service_up INTEGER NOT NULL DEFAULT 1,
    fail_restart INTEGER NOT NULL DEFAULT 0,
    disk_used REAL NOT NULL DEFAULT 0,
    metrics_fault TEXT,
    metrics_frozen_at REAL,
    metrics_frozen_load REAL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    timeout INTEGER NOT NULL,
    status TEXT NOT NULL,
    hosts TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    fingerprint TEXT,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS job_results (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    host_id INTEGER NOT NULL,
    hostname TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    started_at REAL,
    finished_at REAL,
    PRIMARY KEY (job_id, host_id)
);
CREATE INDEX IF NOT EXISTS job_results_host ON job_results(host_id);
"""

HOST_COLUMNS = ("id", "hostname", "ip", "os", "owner", "tags", "created_at")
SELECT_HOSTS = f"SELECT {', '.join(HOST_COLUMNS)} FROM hosts"  # the columns `host_dict` reads


class Duplicate(Exception):
    """A hostname or IP already exists."""


class LabStore:
    """Thread-safe access to the lab's SQLite database."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(host_state)")}
        for column, declaration in (  # labs made before these were simulated
            ("disk_used", "REAL NOT NULL DEFAULT 0"),
            ("metrics_fault", "TEXT"),
            ("metrics_frozen_at", "REAL"),
            ("metrics_frozen_load", "REAL"),
        ):
            if column not in columns:
                self._db.execute(f"ALTER TABLE host_state ADD COLUMN {column} {declaration}")
        self.lock = threading.RLock()
        self.changes = 0  # writes made through this store: what was read is current while equal

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._db.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self.lock:
            return self._db.execute(sql, args).fetchone()

    def _run(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            cursor = self._db.execute(sql, args)
            self.changes += 1
            return cursor

    # hosts -------------------------------------------------------------------------------

    @staticmethod
    def host_dict(row: sqlite3.Row) -> dict[str, Any]:
        """A row of `SELECT_HOSTS` as the API's host."""
        host = dict(zip(HOST_COLUMNS, row, strict=True))
        host["tags"] = json.loads(host["tags"])
        return host

    def list_hosts(
        self, page: int, page_size: int, hostname: str | None, ip: str | None, tag: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        where, args = [], []
        if hostname:
            where.append("hostname = ?")
            args.append(hostname)
        if ip:
            where.append("ip = ?")
            args.append(ip)
        if tag:
            where.append("EXISTS (SELECT 1 FROM json_each(hosts.tags) WHERE value = ?)")
            args.append(tag)
        # No WHERE at all when nothing filters: SQLite then counts from the table's b-tree
        # (a 100,000-host listing asked for the total on each of its 100 pages).
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = self._one(f"SELECT COUNT(*) FROM hosts {clause}", args)[0]
        rows = self._all(
            f"{SELECT_HOSTS} {clause} ORDER BY id LIMIT ? OFFSET ?",
            [*args, page_size, (page - 1) * page_size],
        )
        return [self.host_dict(r) for r in rows], total

    def get_host(self, host_id: int) -> dict[str, Any] | None:
        row = self._one(f"{SELECT_HOSTS} WHERE id = ?", (host_id,))
        return self.host_dict(row) if row else None

    def get_host_by_name(self, hostname: str) -> dict[str, Any] | None:
        row = self._one(f"{SELECT_HOSTS} WHERE hostname = ?", (hostname,))
        return self.host_dict(row) if row else None

    def hosts_by_ids(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = list(ids)
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._all(f"{SELECT_HOSTS} WHERE id IN ({marks})", chunk):
                found[row["id"]] = self.host_dict(row)
        return found

    def create_hosts(
        self, specs: Sequence[dict[str, Any]], base_loads: Sequence[float]
    ) -> list[int]:
        """Insert hosts and their state in one transaction; `Duplicate` on a clash."""
        now = time.time()
        ids = []
        with self.lock:
            self.changes += 1
            try:
                self._db.execute("BEGIN")
                for spec, load in zip(specs, base_loads, strict=True):
                    cursor = self._db.execute(
                        "INSERT INTO hosts (hostname, ip, os, owner, tags, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            spec["hostname"],
                            spec["ip"],
                            spec.get("os"),
                            spec.get("owner"),
                            json.dumps(spec.get("tags") or []),
                            now,
                        ),
                    )
                    ids.append(cursor.lastrowid)
                    self._db.execute(
                        "INSERT INTO host_state (host_id, base_load) VALUES (?, ?)",
                        (cursor.lastrowid, load),
                    )
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                raise Duplicate(str(exc)) from None
        return ids

    def update_host(self, host_id: int, fields: dict[str, Any]) -> None:
        if not fields:
            return
        fields = {k: json.dumps(v) if k == "tags" else v for k, v in fields.items()}
        assignments = ", ".join(f"{k} = ?" for k in fields)
        try:
            self._run(f"UPDATE hosts SET {assignments} WHERE id = ?", [*fields.values(), host_id])
        except sqlite3.IntegrityError as exc:
            raise Duplicate(str(exc)) from None

    def delete_host(self, host_id: int) -> bool:
        return self._run("DELETE FROM hosts WHERE id = ?", (host_id,)).rowcount > 0

    def delete_all_hosts(self) -> None:
        with self.lock:
            self.changes += 1
            self._db.execute("DELETE FROM job_results")
            self._db.execute("DELETE FROM jobs")
            self._db.execute("DELETE FROM host_state")
            self._db.execute("DELETE FROM hosts")
            self._db.execute("DELETE FROM sqlite_sequence WHERE name = 'hosts'")

    # simulated state ---------------------------------------------------------------------

    def host_states(self) -> list[sqlite3.Row]:
        return self._all(
            "SELECT h.id, h.hostname, h.ip, s.* FROM hosts h JOIN host_state s ON s.host_id = h.id"
        )

    def host_state(self, host_id: int) -> sqlite3.Row | None:
        return self._one(
            "SELECT h.id, h.hostname, h.ip, s.* FROM hosts h JOIN host_state s "
            "ON s.host_id = h.id WHERE h.id = ?",
            (host_id,),
        )

    def set_state(self, host_id: int, **fields: Any) -> None:
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._run(
            f"UPDATE host_state SET {assignments} WHERE host_id = ?", [*fields.values(), host_id]
        )

    # jobs --------------------------------------------------------------------------------

    def job_by_key(self, key: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM jobs WHERE idempotency_key = ?", (key,))

    def create_job(
        self,
        job_id: str,
        command: str,
        timeout: int,
        hosts: dict[int, dict[str, Any]],
        key: str | None,
        fingerprint: str,
    ) -> None:
        now = time.time()
        with self.lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO jobs (id, command, timeout, status, hosts, idempotency_key, "
                "fingerprint, created_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                (job_id, command, timeout, json.dumps(list(hosts)), key, fingerprint, now),
            )
            self._db.executemany(
                "INSERT INTO job_results (job_id, host_id, hostname, status) "
                "VALUES (?, ?, ?, 'pending')",
                [(job_id, hid, host["hostname"]) for hid, host in hosts.items()],
            )
            self._db.execute("COMMIT")

    def set_job(self, job_id: str, **fields: Any) -> None:
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._run(f"UPDATE jobs SET {assignments} WHERE id = ?", [*fields.values(), job_id])

    def set_result(self, job_id: str, host_id: int, **fields: Any) -> None:
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._run(
            f"UPDATE job_results SET {assignments} WHERE job_id = ? AND host_id = ?",
            [*fields.values(), job_id, host_id],
        )

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return None
        results = self._all(
            "SELECT * FROM job_results WHERE job_id = ? ORDER BY host_id", (job_id,)
        )
        return _job_dict(row, results)

    def list_jobs(
        self, host_id: int | None, status: str | None, since: float | None, limit: int = 500
    ) -> list[dict[str, Any]]:
        where, args = ["1=1"], []
        if host_id is not None:
            where.append("id IN (SELECT job_id FROM job_results WHERE host_id = ?)")
            args.append(host_id)
        if status:
            where.append("status = ?")
            args.append(status)
        if since is not None:
            where.append("created_at >= ?")
            args.append(since)
        rows = self._all(
            f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT ?",
            [*args, limit],
        )
        return [
            _job_dict(r, self._all("SELECT * FROM job_results WHERE job_id = ?", (r["id"],)))
            for r in rows
        ]

    def unfinished_jobs(self) -> list[str]:
        return [
            r["id"] for r in self._all("SELECT id FROM jobs WHERE status IN ('pending', 'running')")
        ]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _job_dict(row: sqlite3.Row, results: Sequence[sqlite3.Row]) -> dict[str, Any]:
    return {
        "job_id": row["id"],
        "command": row["command"],
        "timeout": row["timeout"],
        "status": row["status"],
        "hosts": json.loads(row["hosts"]),
        "created_at": _iso(row["created_at"]),
        "finished_at": _iso(row["finished_at"]),
        "results": [
            {
                "host_id": r["host_id"],
                "hostname": r["hostname"],
                "status": r["status"],
                "exit_code": r["exit_code"],
                "stdout": r["stdout"],
                "stderr": r["stderr"],
                "started_at": _iso(r["started_at"]),
                "finished_at": _iso(r["finished_at"]),
            }
            for r in results
        ],
    }
