"""`LabAdmin`: a client of the lab platform's own admin endpoints (lab/routes_admin.py)."""

from __future__ import annotations

from typing import Any

import requests

from opsflow.lab.config import LabConfig, lab_secrets


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
