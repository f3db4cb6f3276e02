"""Typed models for what crosses the ops platform's API.

Lenient on input (extra fields ignored, optional fields absent, numeric ids as strings or
integers) and strict on what a runbook relies on (a host has an id, a hostname and an IP).

Example:
    >>> Host.model_validate({"id": 7, "hostname": "web-01", "ip": "10.0.0.7"}).id
    '7'
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from enum import Enum
from ipaddress import ip_address

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

_HOSTNAME = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"


class _APIModel(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class HostSpec(_APIModel):
    """What you send to create or replace a host."""

    hostname: str = Field(
        pattern=_HOSTNAME, max_length=253, description="DNS-style host name, e.g. web-01."
    )
    ip: str = Field(description="IPv4 or IPv6 address.")
    os: str | None = Field(default=None, description="Operating system, e.g. Debian 12.")
    owner: str | None = Field(default=None, description="Owning team.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels for selection.")

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str) -> str:
        try:
            return str(ip_address(value.strip()))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


class Host(HostSpec):
    """A host as the platform returns it."""

    id: str
    hostname: str
    ip: str
    tags: list[str] = Field(default_factory=list)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_or_empty(cls, value: object) -> object:
        return [] if value is None else value


class JobStatus(str, Enum):
    """Status of a job on the platform; the last four are final."""

    pending = "pending"
    running = "running"
    success = "success"
    failed = "failed"
    partial = "partial"
    cancelled = "cancelled"
    timeout = "timeout"

    @property
    def is_final(self) -> bool:
        return self not in (JobStatus.pending, JobStatus.running)


class JobResult(_APIModel):
    """One host's outcome within a job."""

    host_id: str
    hostname: str | None = None
    status: JobStatus = JobStatus.pending
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == JobStatus.success and self.exit_code == 0


class Job(_APIModel):
    """A command run on a set of hosts."""

    job_id: str = Field(validation_alias=AliasChoices("job_id", "id"))
    status: JobStatus
    command: str | None = None
    hosts: list[str] = Field(default_factory=list)
    results: list[JobResult] = Field(default_factory=list)
    created_at: datetime | None = None
    finished_at: datetime | None = None

    def result_for(self, host_id: str) -> JobResult | None:
        """The result of one host, or None when the platform did not report it."""
        return next((r for r in self.results if r.host_id == str(host_id)), None)


class HostSelector(_APIModel):
    """Which hosts a runbook may touch: all of `tags`, and a hostname glob.

    Example:
        >>> HostSelector(tags=["web"], hostname_pattern="lab-web-*").matches(
        ...     Host(id="1", hostname="lab-web-01", ip="127.10.0.2", tags=["lab", "web"]))
        True
    """

    tags: list[str] = Field(default_factory=list, description="Every tag a host must have.")
    hostname_pattern: str | None = Field(
        default=None, description="Shell-style hostname pattern, e.g. web-*; empty for any."
    )

    def matches(self, host: Host) -> bool:
        if not set(self.tags) <= set(host.tags):
            return False
        return not self.hostname_pattern or fnmatch.fnmatchcase(
            host.hostname, self.hostname_pattern
        )
