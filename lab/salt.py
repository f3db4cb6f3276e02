"""SaltStack in the lab: one salt-master, a salt-minion per lab host, salt-api on 127.0.0.1.

Everything lives under `<lab>/salt` (each daemon has its own `root_dir`; nothing is written
elsewhere) and runs in the foreground of its own process, recorded like the other lab
components. Each minion is a lab host: its id is the host name, its grains say its address
(`opsflow_ip`) and role, and it runs commands with the lab's `systemctl` first on its PATH, in
the host's directory, so a restart through Salt is recorded where the platform's are (and the
lab's metrics see it through `restarts.log`).

salt-api logs in with `file` eauth: a generated password, kept in Vault (`secret/opsflow/salt`)
and in the lab's 0600 secrets, never in a block.
"""

from __future__ import annotations

import getpass
import shutil
import sys
import time
from pathlib import Path

import requests
import yaml

from opsflow.lab.hosts import LAB_BIN, host_dir

SALT_USER = "opsflow"
API_READY_SECONDS = 60
MINIONS_READY_SECONDS = 90  # from start to answering test.ping, on a loaded CI machine
CONNECTED_MINIONS_SECONDS = 20  # a running minion that does not answer in this is deaf


def salt_dir(lab_dir: Path) -> Path:
    return lab_dir / "salt"


def restart_log(lab_dir: Path) -> Path:
    """Where the lab `systemctl` of a Salt minion notes each restart, for the platform to see."""
    return lab_dir / "restarts.log"


def salt_binary(name: str) -> str:
    """`salt-master`, `salt-minion`, `salt-api`, installed with `pip install opsflow[salt]`."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"lab: {name} is not installed: pip install 'opsflow[salt]'")
    return found


def write_master_config(
    lab_dir: Path, ports: dict[str, int], password: str, minions: list[str]
) -> Path:
    """The master's and salt-api's configuration (one file, as salt-api reads the master's)."""
    root = salt_dir(lab_dir) / "master"
    root.mkdir(parents=True, exist_ok=True)
    (root / "eauth").touch(mode=0o600)
    (root / "eauth").write_text(f"{SALT_USER}:{password}\n")
    # The lab's own minions are accepted on sight; any other minion waits, as a new host does
    # (register-hosts accepts it).
    (root / "autosign").write_text("\n".join(minions) + "\n")
    config = {
        "root_dir": str(root),
        "pki_dir": str(root / "pki"),
        "cachedir": str(root / "cache"),
        "sock_dir": str(root / "sock"),
        "pidfile": str(root / "salt-master.pid"),
        "log_file": str(root / "master.log"),
        "api_logfile": str(root / "api.log"),
        "api_pidfile": str(root / "salt-api.pid"),
        "log_level_logfile": "warning",
        "interface": "127.0.0.1",
        "publish_port": ports["publish"],
        "ret_port": ports["ret"],
        "user": getpass.getuser(),
        "autosign_file": str(root / "autosign"),
        "open_mode": False,
        "auto_accept": False,
        "keep_jobs_seconds": 86400,
        "external_auth": {
            "file": {
                "^filename": str(root / "eauth"),
                "^filetype": "text",
                SALT_USER: [".*", "@runner", "@wheel", "@jobs"],
            }
        },
        "netapi_enable_clients": ["local", "local_async", "runner", "runner_async", "wheel"],
        "rest_cherrypy": {"host": "127.0.0.1", "port": ports["api"], "disable_ssl": True},
    }
    path = root / "master"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def write_minion_config(
    lab_dir: Path, hostname: str, ip: str, role: str, ports: dict[str, int]
) -> Path:
    root = salt_dir(lab_dir) / "minions" / hostname
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "id": hostname,
        "root_dir": str(root),
        "pki_dir": str(root / "pki"),
        "cachedir": str(root / "cache"),
        "sock_dir": str(root / "sock"),
        "pidfile": str(root / "salt-minion.pid"),
        "log_file": str(root / "minion.log"),
        "log_level_logfile": "warning",
        "master": "127.0.0.1",
        "master_port": ports["ret"],
        "publish_port": ports["publish"],
        "user": getpass.getuser(),
        "acceptance_wait_time": 1,
        "random_reauth_delay": 0,
        "recon_default": 200,
        "recon_max": 1000,
        "multiprocessing": True,
        "grains": {"opsflow_ip": ip, "roles": [role, "lab"]},
    }
    (root / "minion").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def minion_env(lab_dir: Path, hostname: str, ip: str) -> dict[str, str]:
    """What `cmd.run_all` runs with on this minion: the lab's `systemctl` first on PATH, in the
    host's directory, restarts noted for the platform."""
    home = host_dir(lab_dir, hostname)
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{LAB_BIN}:{Path(sys.executable).parent}:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home),
        "LAB_HOST_DIR": str(home),
        "LAB_HOSTNAME": hostname,
        "LAB_HOST_IP": ip,
        "LAB_RESTART_LOG": str(restart_log(lab_dir)),
        "LANG": "C.UTF-8",
    }


def wait_for_api(api_url: str, password: str, seconds: float = API_READY_SECONDS) -> str:
    """Block until salt-api logs the lab user in; its token."""
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = requests.post(
                f"{api_url}/login",
                json={"username": SALT_USER, "password": password, "eauth": "file"},
                timeout=5,
            )
            if answer.ok:
                return answer.json()["return"][0]["token"]
            last = f"{answer.status_code} {answer.text[:200]}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"lab: salt-api did not log in within {seconds:g}s ({last})")


def silent_minions(
    api_url: str, token: str, minions: list[str], seconds: float = MINIONS_READY_SECONDS
) -> list[str]:
    """Poll `test.ping` every 0.5 s until every minion answers (a command sent before a minion
    is connected is lost); return those that did not within `seconds` (empty when all did)."""
    deadline = time.monotonic() + seconds
    answered: set[str] = set()
    while time.monotonic() < deadline:
        try:
            answer = requests.post(
                f"{api_url}/",
                headers={"X-Auth-Token": token},
                json=[
                    {
                        "client": "local",
                        "tgt": minions,
                        "tgt_type": "list",
                        "fun": "test.ping",
                        "timeout": 2,
                    }
                ],
                timeout=30,
            )
            if answer.ok:
                answered = {m for m, ok in answer.json()["return"][0].items() if ok is True}
                if answered >= set(minions):
                    return []
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return sorted(set(minions) - answered)


def clear_job_cache(lab_dir: Path) -> None:
    """Forget every Salt job (the master's local job cache): a lab reset for Salt."""
    jobs = salt_dir(lab_dir) / "master" / "cache" / "jobs"
    if jobs.exists():
        for entry in jobs.iterdir():
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
