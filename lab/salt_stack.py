"""The lab's Salt topology, started and checked: a salt-master, a salt-minion per lab host and
salt-api (`opsflow lab up --backend salt`; the configuration files are lab/salt.py's)."""

from __future__ import annotations

import shutil
from typing import Any

import requests

from opsflow.lab.admin import LabAdmin
from opsflow.lab.config import LabConfig
from opsflow.lab.processes import _alive, _ensure, _save_processes, _start, stop_processes


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
