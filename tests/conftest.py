"""Real servers for the tests: a Prefect API (test harness) and the whole lab stack.

Nothing here skips: when a server cannot be started the fixture fails, in CI and locally.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import settings
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_DATABASE_CONNECTION_URL,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from opsflow.blocks import OpsPlatform, VaultConnection, VaultSecret
from opsflow.flows.runbooks.disk_cleanup import USAGE_QUERY as DISK_USAGE
from opsflow.flows.services.local_server import PORT_VARIABLE, WRITE_BATCHING, LocalServer
from opsflow.lab.stack import LabAdmin, LabConfig, LabPorts, down, lab_secrets, up
from opsflow.opsapi import Transport
from opsflow.tasks.fleet_budget import forget_budgets

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Every Prefect server of the suite commits its records as opsflow's local server does.
for _key, _value in WRITE_BATCHING.items():
    os.environ.setdefault(_key, _value)
# Anything the suite starts without a server of its own (a temporary one, `opsflow lab up`)
# keeps its Prefect database here, never in the developer's ~/.prefect; each shard of a
# parallel run its own (the workers would inherit the controller's).
OWN_PREFECT_HOME = "PYTEST_XDIST_WORKER" in os.environ or "PREFECT_HOME" not in os.environ
if OWN_PREFECT_HOME:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="opsflow-tests-prefect-home-")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

# Property-based tests: the same examples on every CI run (a red build is reproducible);
# fresh random ones locally, where a new find is welcome.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def flapping_events(hostname: str, plan_digest: str, since: datetime | None = None) -> list[Any]:
    """The `opsflow.host.flapping` events the Prefect API has for a host from one run's plan
    (since a time: the same plan made on another backend earlier in the session has the same
    digest)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        found = client.read_events(
            EventFilter(
                event=EventNameFilter(name=["opsflow.host.flapping"]),
                resource=EventResourceFilter(id=[f"opsflow.host.{hostname}"]),
            ),
            limit=50,
        ).events
    return [
        e
        for e in found
        if e.payload.get("plan") == plan_digest and (since is None or e.occurred >= since)
    ]


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Lab ports come from below Linux's ephemeral range (32768-60999), where a port that the OS
# hands to anyone binding port 0 (Prefect's servers, clients) could be taken between choosing
# and starting; each shard of a parallel run (scripts/test.sh) has a slice of its own.
PORTS_FROM, PORTS_TO = 21000, 32000


def _port_slice() -> tuple[int, int]:
    shard = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    shards = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = (PORTS_TO - PORTS_FROM) // shards
    start = PORTS_FROM + shard * size
    return start, start + size - 2


def free_port() -> int:
    """One port of this shard's slice that nothing listens on."""
    low, high = _port_slice()
    while not _free(port := random.randint(low, high)):
        pass
    return port


def free_ports() -> LabPorts:
    """Every lab port (vault needs its port + 1 too), none that anything listens on."""
    chosen: list[int] = []
    low, high = _port_slice()
    while len(chosen) < len(fields(LabPorts)):
        port = random.randint(low, high)
        if all(_free(p) for p in (port, port + 1)) and all(abs(port - o) > 1 for o in chosen):
            chosen.append(port)
    return LabPorts(*chosen)


# The Prefect APIs of this session (the harness, `prefect_server`): each keeps fleet budgets.
PREFECT_APIS: list[str] = []


@dataclass
class Lab:
    """The running lab as the tests see it."""

    config: LabConfig
    admin: LabAdmin
    secrets: dict[str, str]

    @property
    def approle(self) -> dict[str, str]:
        return json.loads((self.config.dir / "approle.json").read_text())

    def prometheus_loads(self) -> dict[str, float]:
        """hostname -> node_load1 as Prometheus has it now."""
        answer = requests.get(
            f"{self.config.prometheus_url}/api/v1/query", params={"query": "node_load1"}, timeout=5
        ).json()
        return {r["metric"]["hostname"]: float(r["value"][1]) for r in answer["data"]["result"]}

    def prometheus_query(self, promql: str, above: float) -> dict[str, float]:
        """hostname -> value for the series of `promql` above `above`."""
        answer = requests.get(
            f"{self.config.prometheus_url}/api/v1/query", params={"query": promql}, timeout=5
        ).json()
        values = {r["metric"]["hostname"]: float(r["value"][1]) for r in answer["data"]["result"]}
        return {name: value for name, value in values.items() if value > above}

    def jobs(self) -> list[dict[str, Any]]:
        return self.admin._call("GET", "/api/v1/jobs")["data"]

    def reset(self, hosts: int = 10) -> None:
        """Fresh calm hosts, no jobs, every fleet budget unused (on each Prefect server of the
        session); returns once Prometheus shows exactly the hosts, all calm: loads, and disks
        (30 % used when calm). Loads alone could still be the last test's scrape when that
        test only filled disks."""
        self.admin.reset(hosts)
        topology = [self.config.prefect_api_url] if self.config.prefect != "none" else []
        for url in PREFECT_APIS + topology:
            with temporary_settings({PREFECT_API_URL: url}):
                forget_budgets()
        names = {h["hostname"] for h in self.admin.hosts()}
        wait_until(
            lambda: (
                (loads := self.prometheus_loads()).keys() == names
                and max(loads.values()) < 2
                and not self.prometheus_query(DISK_USAGE, 50)
            ),
            20,
            "Prometheus to see the calm lab",
        )

    def overload(self, load: float = 8.0, *hostnames: str) -> None:
        """Overload hosts; returns once Prometheus shows it."""
        for name in hostnames:
            self.admin.overload(name, load)
        wait_until(
            lambda: all(self.prometheus_loads().get(n) == load for n in hostnames),
            20,
            f"Prometheus to see {hostnames} at {load}",
        )


# A test's tier is the heaviest real server it uses, known from its fixtures (heaviest first);
# `pytest -m <tier>` runs one tier (README, "Tests").
TIER_FIXTURES = {
    "browser": ("browser",),
    "topology": ("prefect_lab", "ha_lab"),
    "salt": ("salt_lab",),
    "lab": ("lab", "prefect_server"),
}
TIERS = ("unit", "api", *TIER_FIXTURES)


def tier_of(item: pytest.Item) -> str:
    """unit (tests/unit: no server), api (the Prefect test API only), lab, salt, browser or
    topology (PostgreSQL, `prefect server start` and workers)."""
    if "tests/unit/" in item.nodeid:
        return "unit"
    names = set(getattr(item, "fixturenames", ()))
    params = getattr(getattr(item, "callspec", None), "params", {})
    if any(str(value).startswith("salt-api/") for value in params.values()):
        names.add("salt_lab")  # a backend parametrized to Salt asks for it when it runs
    for tier, fixtures in TIER_FIXTURES.items():
        if names.intersection(fixtures):
            return tier
    return "api"


# The suite runs as two shards in parallel (scripts/test.sh: pytest-xdist, `-n 2 --dist
# loadgroup`), each a session of its own with its own Prefect API and lab on its own ports:
# the topology and Salt tests on one; the rest on the other (about even, by the durations of a
# whole run). A shard's tests run in this
# file's order; each ends with its own leak scan. (Three shards were measured on this 2-core
# machine: 21 min of pytest against 20.7 min for two; the suite is bound by CPU, not waits.)
SHARD_OF_TIER = {"topology": "servers", "salt": "servers"}
SHARDS = ("servers", "rest")


def shard_of(item: pytest.Item) -> str:
    marked = item.get_closest_marker("xdist_group")
    if marked:  # the leak scan: one per shard
        return str(marked.args[0])
    return SHARD_OF_TIER.get(tier_of(item), "rest")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """No schemathesis report files from a parallel run: its xdist reporter (4.32) fails the
    whole run at its end importing its HTML writer, even with no report asked for."""
    config.pluginmanager.unregister(name="schemathesis-xdist")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Each test is marked with its tier (for `-m`) and its shard (for pytest-xdist)."""
    item.add_marker(tier_of(item))
    if not item.get_closest_marker("xdist_group"):
        item.add_marker(pytest.mark.xdist_group(shard_of(item)))


def in_parallel(config: pytest.Config) -> bool:
    """A parallel run of shards (pytest-xdist's `--dist loadgroup`), not one session."""
    # (xdist's workers see `dist` as "no" and `loadgroup` set; its controller the reverse)
    option = config.option
    return getattr(option, "dist", "no") == "loadgroup" or getattr(option, "loadgroup", False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`shard`: the leak scan runs once per shard in a parallel run (each scans its own
    session), once in a plain run."""
    if "shard" in metafunc.fixturenames:
        shards = SHARDS if in_parallel(metafunc.config) else ("all",)
        metafunc.parametrize(
            "shard", [pytest.param(s, marks=pytest.mark.xdist_group(s)) for s in shards]
        )


def _run_order(item: pytest.Item) -> tuple[bool, int]:
    """Topology tests after all others, the PostgreSQL one before HA (each is built once, in
    turn); `last` (the leak scan) after everything. The sort is stable: the rest keep their
    order, a module's tests stay together."""
    names = set(getattr(item, "fixturenames", ()))
    topology = 1 if "prefect_lab" in names else 2 if "ha_lab" in names else 0
    return item.get_closest_marker("last") is not None, topology


@pytest.hookimpl(trylast=True)  # after a plugin that shuffles (pytest-random-order)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests run in `_run_order`; in a parallel run, each in its shard (or none runs)."""
    items.sort(key=_run_order)
    if in_parallel(config) and items and not items[0].nodeid.endswith(f"@{shard_of(items[0])}"):
        raise pytest.UsageError(
            "pytest-xdist did not group the tests into their shards (its loadgroup needs "
            "pytest < 9.2): run `bash scripts/setup.sh`, or run without -n"
        )


def lab_platform_copy(vault: VaultConnection | None = None, **changes: Any) -> OpsPlatform:
    """The lab's Ops Platform block, unsaved, with its token read through `vault` (default the
    lab's own connection) and any field changed (`transport` fields given by name too)."""
    transport_fields = {k: changes.pop(k) for k in list(changes) if k in Transport.model_fields}
    lab_platform = OpsPlatform.load("lab")
    fields = {
        "url": lab_platform.url,
        "transport": lab_platform.transport,
        "token_from_vault": (
            VaultSecret(vault=vault, path="opsflow/platform")
            if vault
            else lab_platform.token_from_vault
        ),
    }
    fields["transport"] = fields["transport"].model_copy(update=transport_fields)
    return OpsPlatform(**{**fields, **changes})


@pytest.fixture(scope="session", autouse=True)
def suite_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every log record of the whole session (ours and Prefect's), for the final leak scan."""
    path = tmp_path_factory.getbasetemp() / "suite.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    loggers = [logging.getLogger(), logging.getLogger("prefect")]
    for logger in loggers:
        logger.addHandler(handler)
    yield path
    for logger in loggers:
        logger.removeHandler(handler)
    handler.close()


@pytest.fixture(scope="session", autouse=True)
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A real Prefect API (SQLite) for the whole session. Its database as it starts, migrated
    and empty, is the start of every other SQLite Prefect server of the session
    (`prefect_server`, a temporary one in the session's PREFECT_HOME): a new database takes
    20-40 s of CPU to migrate here."""
    with prefect_test_harness(server_startup_timeout=120):
        PREFECT_APIS.append(PREFECT_API_URL.value())
        url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        source = sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///"))
        target = sqlite3.connect(migrated_database(tmp_path_factory))
        with source, target:
            source.backup(target)  # consistent, WAL included, while the harness runs
        source.close()
        target.close()
        if OWN_PREFECT_HOME:  # never over a database the suite did not make
            shutil.copyfile(migrated_database(tmp_path_factory), prefect_database(os.environ))
            # opsflow's local server (a command with no PREFECT_API_URL) of this session: on a
            # port of its own (not a developer's, not the other shard's), stopped at the end.
            os.environ[PORT_VARIABLE] = str(free_port())
        try:
            yield
        finally:
            if OWN_PREFECT_HOME:
                LocalServer().stop()


@pytest.fixture(scope="session")
def local_prefect(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An environment with no PREFECT_API_URL and a Prefect home of its own that holds the lab's
    blocks: what an operator has after `opsflow lab up` on their own machine. Its database is
    brand new (the regression test of Prefect's 20 s start-up limit for a temporary server);
    `opsflow lab up` starts opsflow's local server there, which the commands then reuse."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env[PORT_VARIABLE] = str(free_port())
    try:
        up = subprocess.run(
            [sys.executable, "-m", "opsflow.lab", "up", "--dir", str(lab.config.dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        server = json.loads((Path(env["PREFECT_HOME"]) / "opsflow-server.json").read_text())
        PREFECT_APIS.append(f"http://127.0.0.1:{server['port']}/api")  # its fleet budgets
        yield env
    finally:
        subprocess.run([sys.executable, "-m", "opsflow.flows", "server", "stop"], env=env)


def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's Prefect database as migrated, before any test (`prefect_api`)."""
    return tmp_path_factory.getbasetemp() / "prefect-migrated.db"


def prefect_database(env: Mapping[str, str]) -> Path:
    """Where a Prefect server started with `env` keeps its SQLite database."""
    return Path(env["PREFECT_HOME"]) / "prefect.db"


@pytest.fixture(scope="session")
def lab(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """OpenBao, Prometheus, Alertmanager and the lab platform, with the 'lab' blocks saved."""
    config = LabConfig(dir=Path(tmp_path_factory.mktemp("lab")), ports=free_ports(), hosts=10)
    try:
        up(config)
        yield Lab(config, LabAdmin(config), lab_secrets(config))
    finally:
        down(config)


@pytest.fixture(scope="session")
def salt_lab(lab: Lab) -> Lab:
    """The lab with SaltStack too: a salt-master, a salt-minion for each of its 10 hosts and
    salt-api, once per session; the Salt API block named 'lab' saved."""
    lab.reset(10)  # a minion for each of the 10 lab hosts, none for a host a test added
    lab.config.backend = "salt"
    up(lab.config)  # starts only what is missing: the Salt daemons
    return lab


@pytest.fixture(scope="session")
def topologies(lab: Lab) -> Iterator[Any]:
    """The session's one Prefect topology, built by the modules that need it (tests/prefect_lab.py)."""
    from tests.prefect_lab import Topologies

    holder = Topologies(lab)
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture
def fresh_lab(lab: Lab) -> Lab:
    """The lab with 10 fresh, calm hosts and no jobs."""
    lab.reset(10)
    return lab


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` on a free loopback port with its own database: the UI, and the
    background services (lease repossessor, ...) that the test harness's ephemeral API lacks."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_ports().platform
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": f"{url}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    shutil.copyfile(migrated_database(tmp_path_factory), prefect_database(env))
    with (home / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: _answers(f"{url}/api/health"), 90, "prefect server to start")
        PREFECT_APIS.append(f"{url}/api")
        yield url
    finally:
        server.terminate()
        server.wait(20)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
