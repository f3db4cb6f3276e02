"""opsflow's local Prefect server: started on first need, kept running in the background.

With no PREFECT_API_URL, `opsflow run` (and `opsflow lab up`, `opsflow blocks register`) use a
Prefect server on 127.0.0.1 that the first of them starts and later ones reuse: the whole
Prefect server with its services (so a killed run's host locks are repossessed and the run is
marked Crashed, as on a deployment's server), leases kept on disk (a restart of the server
keeps them), telemetry and analytics off, Prefect's own local database in PREFECT_HOME (so the
blocks saved there are found), created private, and its log in a file next to it. Its UI is the
address it prints: the approval link and the run pages work for ad hoc runs too.

`opsflow server start|status|stop` manage it. Two commands starting it at once end with one
server (a file lock); a stale pid file or a port held by another program is said in one line.

Example:
    >>> server = LocalServer()                          # doctest: +SKIP
    >>> server.start(); server.wait_ready()             # doctest: +SKIP
    'http://127.0.0.1:4280/api'
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from opsflow.opsapi.errors import ConfigurationError

MARK = "OPSFLOW_LOCAL_API"  # set while this process uses opsflow's local server
DEFAULT_PORT = 4280
PORT_VARIABLE = "OPSFLOW_SERVER_PORT"
HEARTBEAT_SECONDS = 30  # Prefect's minimum: a killed run is Crashed 90-120 s after it died
STATE_FILE = "opsflow-server.json"
LOG_FILE = "opsflow-server.log"
SERVER_APP = "prefect.server.api.server:create_app"

# A server on SQLite refuses a write that began while another one committed (a busy 503,
# retried): a run's lock, budget and lease calls met one or more in most runs, because the
# server's own services committed every task-run state and every 20 events as they came. These
# commit what came in each second (or each 100 and 200) at once: task runs and events show on
# the UI up to a second later, and a 1,000-host restart's first job went out 0.29-0.33 s into
# the run instead of 0.57-0.75 s. `prefect server start` on SQLite takes the same settings.
WRITE_BATCHING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
}

SERVER_SETTINGS = WRITE_BATCHING | {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT__SERVER_FINAL": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    # A lease lives on disk: a killed run's locks are repossessed even across a server restart.
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
}


class ServerError(ConfigurationError):
    """The local server cannot be started or reached (one line, said as is)."""


@dataclass(frozen=True)
class ServerState:
    """What the state file says about the server opsflow started, and what is true now."""

    pid: int
    port: int
    alive: bool
    answering: bool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


class LocalServer:
    """The server of one PREFECT_HOME: its state file, lock, log and database live there."""

    def __init__(self, home: Path | None = None, port: int | None = None) -> None:
        self.home = home or prefect_home()
        self.port = port or _port_from_environment()

    @property
    def state_file(self) -> Path:
        return self.home / STATE_FILE

    @property
    def log_file(self) -> Path:
        return self.home / LOG_FILE

    def state(self) -> ServerState | None:
        """The server the state file names (alive or not), or None when there is none."""
        try:
            recorded = json.loads(self.state_file.read_text())
            pid, port = int(recorded["pid"]), int(recorded["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        alive = _is_our_server(pid)
        return ServerState(pid, port, alive, alive and _answers(port))

    def start(self) -> tuple[ServerState, bool]:
        """Start it unless it runs already; (its state, whether this call started it). Returns
        at once: `wait_ready()` waits for it to answer.

        Raises:
            ServerError: the port is held by another program, or the server cannot start.
        """
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._locked():
            state = self.state()
            if state is not None and state.alive:
                return state, False
            self.state_file.unlink(missing_ok=True)  # stale: its process is gone
            if not _port_free(self.port):
                raise ServerError(
                    f"port {self.port} on 127.0.0.1 is taken by another program (not opsflow's "
                    f"server): stop it, or choose another port with {PORT_VARIABLE} or "
                    "`opsflow server start --port`"
                )
            process = self._spawn()
            self.state_file.write_text(json.dumps({"pid": process.pid, "port": self.port}))
            self.state_file.chmod(0o600)
            return ServerState(process.pid, self.port, True, False), True

    def wait_ready(self, timeout: float = 120) -> str:
        """Block until the server answers; its API URL.

        Prefect's own ephemeral server gives up after 20 s, and a new database takes 20-25 s to
        set up on a small machine: this waits `timeout` seconds.

        Raises:
            ServerError: it exited, or did not answer within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state is None or not state.alive:
                raise ServerError(
                    f"the local Prefect server exited while starting: {self._last_log_line()} "
                    f"(its log: {self.log_file})"
                )
            if state.answering:
                return state.api_url
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the local Prefect server did not answer within {timeout:g}s "
                    f"(its log: {self.log_file})"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 20) -> ServerState | None:
        """Stop it (SIGTERM, then SIGKILL after `timeout` s); the state it had, or None."""
        with self._locked():
            state = self.state()
            self.state_file.unlink(missing_ok=True)
        if state is None or not state.alive:
            return state
        os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_our_server(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_our_server(state.pid):
            os.killpg(state.pid, signal.SIGKILL)
        return state

    def leased_limits(self) -> set[str]:
        """The ids of the concurrency limits a lease on this server holds now: its leases are
        files (`concurrency_leases/<id>.json`, each naming its limits)."""
        held: set[str] = set()
        for path in (self.home / "concurrency_leases").glob("*.json"):
            if path.name == "expirations.json":
                continue
            try:
                held.update(json.loads(path.read_text()).get("resource_ids") or [])
            except (OSError, ValueError, AttributeError):
                continue  # given back while read
        return held

    def serves(self, api_url: str | None) -> bool:
        """Whether `api_url` is this server's API (so its lease files are the server's)."""
        state = self.state()
        return bool(api_url) and state is not None and state.alive and state.api_url == api_url

    def _spawn(self) -> subprocess.Popen[bytes]:
        api = f"http://127.0.0.1:{self.port}/api"
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env |= SERVER_SETTINGS | {
            "PREFECT_HOME": str(self.home),
            "PREFECT_UI_API_URL": api,
            "PREFECT_UI_URL": f"http://127.0.0.1:{self.port}",
        }
        descriptor = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", SERVER_APP]
                + ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
                + ["--lifespan", "on"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=descriptor,
                stderr=descriptor,
                start_new_session=True,  # outlives the command; not killed by its Ctrl-C
                preexec_fn=_private_files,
                cwd=self.home,
            )
        finally:
            os.close(descriptor)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One starter or stopper at a time, across processes."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.home / "opsflow-server.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _last_log_line(self) -> str:
        try:
            lines = [x for x in self.log_file.read_text(errors="replace").splitlines() if x.strip()]
        except OSError:
            return "no log"
        return lines[-1][:300] if lines else "no log"


def use_local_server() -> LocalServer | None:
    """With no PREFECT_API_URL: start opsflow's local server (or find it running) and point
    this process's Prefect at it, with run heartbeats on (so a killed run is marked Crashed);
    returns it (the caller waits with `wait_ready()`). With PREFECT_API_URL set: None.

    Call it before Prefect is imported: Prefect reads its settings at import.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    server = LocalServer()
    state, _ = server.start()
    os.environ["PREFECT_API_URL"] = state.api_url
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ[MARK] = "1"
    return server


def ready(server: LocalServer) -> str:
    """Wait for the server `use_local_server()` started; make sure it marks dead runs Crashed."""
    api = server.wait_ready()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from opsflow.flows.services.crash_detection import ensure_crash_automation

    with temporary_settings({PREFECT_API_URL: api}):
        ensure_crash_automation(HEARTBEAT_SECONDS)
    return api


@contextlib.contextmanager
def local_api(timeout: float = 120) -> Iterator[str]:
    """A Prefect API for a command that needs one: the server in PREFECT_API_URL when one is
    set, else opsflow's local server (started if it is not running; it keeps running).

    Example:
        >>> with local_api():                          # doctest: +SKIP
        ...     OpsPlatform(url=...).save("lab")
    """
    server = use_local_server() or (LocalServer() if os.environ.get(MARK) else None)
    yield server.wait_ready(timeout) if server else os.environ["PREFECT_API_URL"]


def prefect_home() -> Path:
    """PREFECT_HOME as Prefect reads it (its environment variable, else ~/.prefect)."""
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def _port_from_environment() -> int:
    text = os.environ.get(PORT_VARIABLE) or str(DEFAULT_PORT)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ServerError(f"{PORT_VARIABLE}={text!r} is not a port: give a number 1-65535")
    return int(text)


def _private_files() -> None:
    """In the server's process: its database (block encryption key, run parameters) and
    everything else it writes are readable by this user only."""
    os.umask(0o077)


def _is_our_server(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return SERVER_APP.encode() in command  # a zombie's is empty; a reused pid's is another


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def _answers(port: int) -> bool:
    try:
        with _DIRECT.open(f"http://127.0.0.1:{port}/api/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False
