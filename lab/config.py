"""The lab's configuration: where it keeps its files (`DEFAULT_DIR`), its loopback ports
(`LabPorts`, `LabConfig`), and the secrets it generates for itself (`lab_secrets`)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("OPSFLOW_LAB_DIR", "~/.opsflow/lab")).expanduser()
BLOCK_NAME = "lab"


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


def _salt_password(config: LabConfig, values: dict[str, str]) -> str:
    """The salt-api password (labs made before Salt was added get one now)."""
    return _lab_secret(config, values, "salt_password")


def _lab_secret(config: LabConfig, values: dict[str, str], name: str) -> str:
    """One of the lab's generated secrets (a lab made before it existed gets it now)."""
    if name not in values:
        values[name] = secrets.token_urlsafe(24)
        (config.dir / "secrets.json").write_text(json.dumps(values))
    return values[name]
