"""The temporary local Prefect server of an ad hoc run (`opsflow run` with no PREFECT_API_URL).

Prefect would start one itself, in the middle of the run, with its telemetry on; this one
starts as soon as the command line is parsed (so it comes up while the runbook is imported and
its parameters are checked), with telemetry and analytics off, its output kept out of the
operator's terminal, and it stops when the command ends. It uses Prefect's own local database,
so the blocks `opsflow lab up` or `opsflow blocks register` saved there are found.

Example:
    >>> server = TemporaryServer()                      # doctest: +SKIP
    >>> server.start(); server.wait_ready()             # doctest: +SKIP
    'http://127.0.0.1:41623/api'
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

MARK = "OPSFLOW_TEMPORARY_API"  # set while this process uses a temporary server

QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry from a throwaway local server
    "DO_NOT_TRACK": "1",
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}


class TemporaryServer:
    """`prefect.server.api.server:create_app` under uvicorn on a free loopback port."""

    _current: TemporaryServer | None = None

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = _free_port()

    @classmethod
    def current(cls) -> TemporaryServer:
        """The one this process started."""
        if cls._current is None:
            raise RuntimeError("no temporary Prefect server was started")
        return cls._current

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Start it, and make this process's Prefect use it (PREFECT_API_URL)."""
        os.environ["PREFECT_API_URL"] = self.api_url
        os.environ[MARK] = "1"
        TemporaryServer._current = self
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
            + ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error"]
            + ["--lifespan", "on"],
            env={**os.environ, **QUIET},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # killed with the command, even by SIGKILL
        )
        atexit.register(self.stop)

    def wait_ready(self, timeout: float = 60) -> str:
        """Block until the API answers; its URL.

        Raises:
            RuntimeError: it exited or did not answer within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError("the temporary Prefect server exited while starting")
            try:
                with _DIRECT.open(f"{self.api_url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return self.api_url
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the temporary Prefect server did not answer within {timeout:g}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def local_api(timeout: float = 120) -> Iterator[str | None]:
    """A Prefect API for a command that needs one only while it runs: the server in
    PREFECT_API_URL when one is set, else a temporary local one on Prefect's local database.

    Prefect's own ephemeral server gives up after 20 s, and a new database takes 20-25 s to
    set up on a small machine: this one waits `timeout` seconds.

    Example:
        >>> with local_api():                          # doctest: +SKIP
        ...     OpsPlatform(url=...).save("lab")
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    server = TemporaryServer()
    server.start()
    try:
        yield server.wait_ready(timeout)
    finally:
        server.stop()
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.pop(MARK, None)
        TemporaryServer._current = None


def _die_with_parent() -> None:
    """In the child, before it runs the server: Linux sends it SIGTERM when we die."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: atexit still stops it on a normal exit
        pass


PR_SET_PDEATHSIG = 1
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
