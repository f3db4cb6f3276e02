"""The lab's OpenBao dev server, beyond its command line: the audit device's configuration
file, and its unseal key, kept in a 0600 file and blanked out of the log."""

from __future__ import annotations

import re
import time
from pathlib import Path

from opsflow.lab.config import LabConfig


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
