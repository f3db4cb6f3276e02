"""The platform's hosts: `/api/v1/hosts` list, create, read, replace, update and delete."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from opsflow.lab.hosts import base_load_for, host_dir
from opsflow.lab.routes_common import ERRORS, MAX_ID, fail
from opsflow.lab.store import Duplicate, LabStore

HOSTNAME_PATTERN = (
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
HostId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


IPAddress = Annotated[
    str,
    AfterValidator(_ip_address),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
]


class HostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(pattern=HOSTNAME_PATTERN, max_length=253)
    ip: IPAddress
    os: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )


class HostPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str | None = Field(default=None, pattern=HOSTNAME_PATTERN, max_length=253)
    ip: IPAddress | None = None
    os: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=50
    )


class Host(HostIn):
    model_config = ConfigDict(extra="ignore")
    id: int
    created_at: float


class HostPage(BaseModel):
    data: list[Host]
    total: int
    page: int
    page_size: int


def hosts_router(store: LabStore, root: Path, auth: list[Any]) -> APIRouter:
    """The hosts routes over `store`; a new host gets its directory under `root`."""
    router = APIRouter()

    def host_or_404(host_id: int) -> dict[str, Any]:
        host = store.get_host(host_id)
        if host is None:
            raise fail(404, "host_not_found", f"host {host_id} does not exist")
        return host

    @router.get("/api/v1/hosts", response_model=HostPage, dependencies=auth, responses=ERRORS)
    async def list_hosts(
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
        hostname: str | None = None,
        ip: str | None = None,
        tag: str | None = None,
    ) -> JSONResponse:
        # Straight out as JSON: every stored host was validated on its way in, and validating
        # each one again on the way out cost the simulator 1 s of CPU per 100,000 listed, on
        # the cores the runbook under test shares (`response_model` still documents the page).
        rows, total = store.list_hosts(page, page_size, hostname, ip, tag)
        return JSONResponse({"data": rows, "total": total, "page": page, "page_size": page_size})

    @router.post(
        "/api/v1/hosts", response_model=Host, status_code=201, dependencies=auth, responses=ERRORS
    )
    def create_host(spec: HostIn) -> dict[str, Any]:
        try:
            [host_id] = store.create_hosts([spec.model_dump()], [base_load_for(spec.hostname)])
        except Duplicate:
            raise fail(
                409,
                "duplicate_host",
                f"a host with hostname {spec.hostname!r} or ip {spec.ip!r} exists",
            ) from None
        host_dir(root, spec.hostname)
        return host_or_404(host_id)

    @router.get("/api/v1/hosts/{host_id}", response_model=Host, dependencies=auth, responses=ERRORS)
    async def get_host(host_id: HostId) -> dict[str, Any]:
        return host_or_404(host_id)

    def change(host_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        host_or_404(host_id)
        try:
            store.update_host(host_id, fields)
        except Duplicate:
            raise fail(409, "duplicate_host", "another host has that hostname or ip") from None
        return host_or_404(host_id)

    @router.put("/api/v1/hosts/{host_id}", response_model=Host, dependencies=auth, responses=ERRORS)
    def replace_host(host_id: HostId, spec: HostIn) -> dict[str, Any]:
        return change(host_id, spec.model_dump())

    @router.patch(
        "/api/v1/hosts/{host_id}", response_model=Host, dependencies=auth, responses=ERRORS
    )
    def update_host(host_id: HostId, patch: HostPatch) -> dict[str, Any]:
        return change(host_id, patch.model_dump(exclude_unset=True, exclude_none=True))

    @router.delete("/api/v1/hosts/{host_id}", status_code=204, dependencies=auth, responses=ERRORS)
    def delete_host(host_id: HostId) -> Response:
        if not store.delete_host(host_id):
            raise fail(404, "host_not_found", f"host {host_id} does not exist")
        return Response(status_code=204)

    return router
