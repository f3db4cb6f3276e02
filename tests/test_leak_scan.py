"""The leak scan after the whole suite: no credential in anything any test left behind.

Runs last (marker `last`). The secrets are the lab's (platform token, Vault root token, AppRole
secret id) and every secret value opsflow handled in this process (each Vault token a login
returned, each value read from Vault). The places are every file the session wrote — the
session log with every record and traceback, both Prefect databases (flow-run parameters,
states and their exception messages, logs, artifacts, events), the opsflow audit log, the lab's
own logs and databases — except the lab's credential stores themselves.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import inhouse_backend
import pytest

import opsflow
from opsflow.lab.vault_seed import REPORT_ROLE, stored_approles
from opsflow.opsapi import redaction
from tests.test_no_secret_leaks import prefect_database_files

# the lab's, mode 0600 (salt's eauth file is salt-api's own user:password list)
CREDENTIAL_STORES = {
    "secrets.json",
    "approle.json",
    "approle-opsflow-report.json",
    "vault-unseal.key",
    "eauth",
    "alert-receiver.token",  # Alertmanager's credentials_file
    "signing-key.pem",  # the lab JWT issuer's private key
    "service-account-token",  # a JWT as a pod would have it mounted (tests/test_vault_jwt.py)
}


LAYERS = ("opsapi", "blocks", "tasks", "flows", "lab")


def published_source() -> str:
    """The source of opsflow and the example backend: a value written there (a docstring
    example such as `api_key="k-123456"`, which the doctests run and so register) is public
    text, and Prefect stores the docstrings of every block type it registers."""
    packages = [opsflow, *(importlib.import_module(f"opsflow.{n}") for n in LAYERS)]
    roots = {Path(p) for package in [*packages, inhouse_backend] for p in package.__path__}
    return "\n".join(p.read_text() for root in roots for p in root.rglob("*.py"))


def written_files(root: Path) -> list[Path]:
    """Everything under `root`, but the lab's credential stores and installed packages (the
    packaging test's virtual environment holds opsflow's own source, docstring examples and
    all, which is code, not something a run wrote)."""
    return [
        p
        for p in root.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p.name not in CREDENTIAL_STORES
        and "site-packages" not in p.parts
    ]


@pytest.mark.last
def test_no_credential_appears_in_anything_the_suite_left_behind(
    lab, suite_log, tmp_path_factory, topologies, shard
):
    topologies.close()  # its servers stopped: their logs are whole
    with redaction._lock:
        handled = sorted(redaction._secrets)
    published = published_source()
    handled = [value for value in handled if value not in published]
    secrets = {
        "platform token": lab.secrets["platform_token"],
        "read-only platform token": lab.secrets["platform_readonly_token"],
        "report AppRole secret id": stored_approles(lab.config)[REPORT_ROLE]["secret_id"],
        "Vault root token": lab.secrets["vault_root_token"],
        "AppRole secret id": lab.approle["secret_id"],
        "salt-api password": lab.secrets["salt_password"],
        "PostgreSQL password": lab.secrets["postgres_password"],
        "alert receiver token": lab.secrets["alert_receiver_token"],
        **{f"secret #{n} opsflow handled": value for n, value in enumerate(handled)},
    }
    files = written_files(tmp_path_factory.getbasetemp()) + prefect_database_files()
    assert suite_log in files and lab.config.audit_log in files
    # the session did log (the shard of the topology and Salt tests logs the least, ~35 kB)
    assert suite_log.stat().st_size > 20_000

    leaks = []
    for path in files:
        content = path.read_bytes()
        leaks += [
            f"{what} in {path}" for what, value in secrets.items() if value.encode() in content
        ]

    print(f"leak scan: {len(secrets)} secrets x {len(files)} files: {len(leaks)} hits")
    assert leaks == []
