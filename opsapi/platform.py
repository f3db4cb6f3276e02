"""Client of the ops platform's REST API: hosts and jobs.

Example:
    >>> client = OpsPlatformClient("https://127.0.0.1:18443", token="...",
    ...                            transport=Transport(ca_cert="ca.pem"))  # doctest: +SKIP
    >>> hosts = client.list_hosts(tag="web")  # every page, followed  # doctest: +SKIP
    >>> job_id = client.execute_job([h.id for h in hosts], "uptime", timeout=30)  # doctest: +SKIP
    >>> client.wait_for_job(job_id).status  # doctest: +SKIP
    <JobStatus.success: 'success'>
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from opsflow.opsapi.backend import FollowsJobs
from opsflow.opsapi.errors import BadResponse, ConfigurationError
from opsflow.opsapi.gc_pause import paused_gc
from opsflow.opsapi.http import JSONClient
from opsflow.opsapi.models import Host, HostSpec, Job
from opsflow.opsapi.redaction import register_secret
from opsflow.opsapi.transport import Transport

API = "/api/v1"
EXECUTE_PATH = f"{API}/job/execute"


class OpsPlatformClient(FollowsJobs, JSONClient):
    """The ops platform: list, get, create, replace, update and delete hosts; run jobs.

    Args:
        base_url: the platform's root URL.
        token: the API token; sent as ``Authorization: <auth_scheme> <token>``.
        auth_scheme: ``Token`` (the platform's default) or ``Bearer``.
        page_size: hosts per page when listing.
        transport: timeout, TLS, retries, pool, proxy and audit log.
    """

    name = "ops platform"

    def __init__(
        self,
        base_url: str,
        token: str,
        auth_scheme: str = "Token",
        page_size: int = 500,
        transport: Transport | None = None,
    ) -> None:
        if not token:
            raise ConfigurationError("ops platform token is empty: set the block's token")
        register_secret(token)
        super().__init__(
            base_url,
            headers={"Authorization": f"{auth_scheme} {token}"},
            transport=transport,
        )
        self.page_size = page_size
        self.allow_post_retries(EXECUTE_PATH)

    # hosts -------------------------------------------------------------------------------

    def iter_hosts(
        self,
        hostname: str | None = None,
        ip: str | None = None,
        tag: str | None = None,
        workers: int = 8,
    ) -> Iterator[Host]:
        """Yield every host matching the filters, page by page, in order.

        GET: /api/v1/hosts?page=&page_size=&hostname=&ip=&tag=

        When the first page gives the total, the pages still to come are known: they are
        fetched `workers` at a time (bounded by the connection pool). Without a total, a short
        page is the last; either way the list is followed further while pages keep coming full
        (the inventory grew while it was read).
        """
        filters = {k: v for k, v in {"hostname": hostname, "ip": ip, "tag": tag}.items() if v}

        def fetch(page: int) -> tuple[list[dict[str, Any]], int | None, int]:
            body = self.request(
                "GET", f"{API}/hosts", params={**filters, "page": page, "page_size": self.page_size}
            )
            rows, total = _page(body, f"{self.base_url}{API}/hosts")
            size = int(body.get("page_size") or self.page_size) if isinstance(body, dict) else 0
            return rows, total, size

        rows, total, size = fetch(1)
        yield from _hosts(rows)
        seen, page = len(rows), 1
        if total is not None and rows and seen < total and len(rows) == size:
            known = range(2, 1 + -(-total // size))  # ceil(total / size) pages in all
            bound = max(1, min(workers, self.transport.pool_size, len(known)))
            pool = ThreadPoolExecutor(max_workers=bound)
            try:
                for rows, total, size in pool.map(fetch, known):
                    yield from _hosts(rows)
                    seen, page = seen + len(rows), page + 1
                    if not rows or (len(rows) < size and (total is None or seen >= total)):
                        return  # the inventory shrank while it was read: this was the last
            finally:  # a reader that stops early, or a page that failed, waits for no other
                pool.shutdown(wait=False, cancel_futures=True)
        while rows and (seen < total if total is not None else len(rows) >= size):
            page += 1
            rows, total, size = fetch(page)
            yield from _hosts(rows)
            seen += len(rows)

    def list_hosts(
        self,
        hostname: str | None = None,
        ip: str | None = None,
        tag: str | None = None,
        workers: int = 8,
    ) -> list[Host]:
        """Every host matching the filters (all pages, `workers` at a time when the total is
        known)."""
        return list(self.iter_hosts(hostname=hostname, ip=ip, tag=tag, workers=workers))

    def get_host(self, host_id: str | int) -> Host:
        """GET: /api/v1/hosts/{id}"""
        return _model(Host, self.request("GET", f"{API}/hosts/{host_id}"), "host")

    def get_hosts(self, host_ids: Sequence[str | int], workers: int = 8) -> list[Host]:
        """Many hosts by id, `workers` requests at a time over the pooled connections."""
        with ThreadPoolExecutor(max_workers=max(1, min(workers, self.transport.pool_size))) as pool:
            return list(pool.map(self.get_host, host_ids))

    def create_host(self, spec: HostSpec) -> Host:
        """POST: /api/v1/hosts — 409 (Conflict) on a duplicate hostname or IP."""
        body = self.request("POST", f"{API}/hosts", json=spec.model_dump(exclude_none=True))
        return _model(Host, _unwrap(body), "host")

    def replace_host(self, host_id: str | int, spec: HostSpec) -> Host:
        """PUT: /api/v1/hosts/{id}"""
        body = self.request("PUT", f"{API}/hosts/{host_id}", json=spec.model_dump())
        return _model(Host, _unwrap(body), "host")

    def update_host(self, host_id: str | int, changes: dict[str, Any]) -> Host:
        """PATCH: /api/v1/hosts/{id} with only the fields to change."""
        body = self.request("PATCH", f"{API}/hosts/{host_id}", json=changes)
        return _model(Host, _unwrap(body), "host")

    def delete_host(self, host_id: str | int) -> None:
        """DELETE: /api/v1/hosts/{id}"""
        self.request("DELETE", f"{API}/hosts/{host_id}")

    # jobs --------------------------------------------------------------------------------

    def execute_job(
        self,
        host_ids: Sequence[str | int],
        command: str,
        timeout: int = 60,
        idempotency_key: str | None = None,
    ) -> str:
        """Start `command` on the hosts and return the job id.

        POST: /api/v1/job/execute. The request carries an Idempotency-Key (a new one unless
        given), so the retries mounted on this endpoint cannot start the job twice.
        """
        if not host_ids:
            raise ConfigurationError("execute_job needs at least one host id")
        body = self.request(
            "POST",
            EXECUTE_PATH,
            json={"hosts": [str(h) for h in host_ids], "command": command, "timeout": timeout},
            headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
        )
        if not isinstance(body, dict) or not body.get("job_id"):
            raise BadResponse(
                f"job submission answered without a job_id: {str(body)[:100]}",
                "POST",
                f"{self.base_url}{EXECUTE_PATH}",
            )
        return str(body["job_id"])

    def get_job(self, job_id: str) -> Job:
        """GET: /api/v1/job/{job_id}"""
        return _model(Job, _unwrap(self.request("GET", f"{API}/job/{job_id}")), "job")

    def cancel_job(self, job_id: str) -> Job:
        """POST: /api/v1/job/{job_id}/cancel — cancelling twice is harmless."""
        self.request("POST", f"{API}/job/{job_id}/cancel")
        return self.get_job(job_id)

    def list_jobs(
        self,
        host_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        command: str | None = None,
    ) -> list[Job]:
        """GET: /api/v1/jobs?host_id=&status=&since= (and only `command`'s, when given)"""
        params = {
            k: v for k, v in {"host_id": host_id, "status": status, "since": since}.items() if v
        }
        body = self.request("GET", f"{API}/jobs", params=params)
        rows, _ = _page(body, f"{self.base_url}{API}/jobs")
        jobs = [_model(Job, row, "job") for row in rows]
        return [j for j in jobs if command is None or j.command == command]


def _unwrap(body: Any) -> Any:
    """Some platforms wrap single objects as ``{"data": {...}}``."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        return body["data"]
    return body


def _page(body: Any, url: str) -> tuple[list[dict[str, Any]], int | None]:
    if isinstance(body, list):
        return body, len(body)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponse(f"expected {{'data': [...]}} but got {str(body)[:100]!r}", "GET", url)
    total = body.get("total")
    return body["data"], int(total) if isinstance(total, int | str) and str(
        total
    ).isdigit() else None


def _hosts(rows: list[dict[str, Any]]) -> list[Host]:
    with paused_gc():  # a page's hosts: objects that stay, no cycles
        return [_model(Host, row, "host") for row in rows]


def _model(model: type[Any], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
        raise BadResponse(
            f"the platform returned a {what} with bad or missing fields: {fields}"
        ) from None
