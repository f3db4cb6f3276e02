"""Typed models for what crosses the ops platform's API.

Lenient on input (extra fields ignored, optional fields absent, numeric ids as strings or
integers) and strict on what a runbook relies on (a host has an id, a hostname and an IP).

Example:
    >>> Host.model_validate({"id": 7, "hostname": "web-01", "ip": "10.0.0.7"}).id
    '7'
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from datetime import datetime
from enum import Enum
from ipaddress import ip_address
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

_HOSTNAME = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
# A dotted IPv4 address already in canonical form (no leading zeros): it is its own normal
# form, so it skips ipaddress's parse (1 s of a 100,000-host listing).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class _APIModel(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class StrictModel(BaseModel):
    """A model of what a person typed: an unknown key is refused, naming the closest known one.

    A typo must never be ignored: ``{"dryrun": true}`` silently planning a real run is how a
    rehearsal restarts production.

    Example:
        >>> class Params(StrictModel):
        ...     dry_run: bool = False
        >>> Params.model_validate({"dryrun": True})
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for Params
          Value error, unknown field 'dryrun' — did you mean 'dry_run'? ...
    """

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,  # --threshold inf would quietly turn a runbook off
        json_schema_extra=lambda s, _: _without_example(s),
    )

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
        unknown = [key for key in data if key not in known]
        if unknown:
            raise ValueError(
                "; ".join(unknown_field_message(str(k), sorted(known)) for k in unknown)
            )
        return data


def _without_example(schema: dict[str, Any]) -> None:
    """A form's description is the docstring's prose: its doctest example stays in the code
    (the Prefect UI would show "Example: >>> RestartPolicy(...)" on the run form)."""
    description = schema.get("description")
    if isinstance(description, str):
        schema["description"] = re.split(r"\n\s*Examples?:", description)[0].strip()


def unknown_field_message(key: str, known: list[str]) -> str:
    """ "unknown field 'dryrun' — did you mean 'dry_run'?" (or the known fields, when none is
    close)."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:  # "tag" for "tags", "dryrun" for "dry_run": compare without separators
        squashed = {k.replace("_", "").replace("-", ""): k for k in known}
        bare = key.replace("_", "").replace("-", "")
        hit = difflib.get_close_matches(bare, list(squashed), n=1, cutoff=0.75)
        close = [squashed[hit[0]]] if hit else []
    hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(known)}"
    return f"unknown field {key!r} — {hint}"


class HostSpec(_APIModel):
    """What you send to create or replace a host."""

    hostname: str = Field(max_length=253, description="DNS-style host name, e.g. web-01.")
    ip: str = Field(description="IPv4 or IPv6 address.")
    os: str | None = Field(default=None, description="Operating system, e.g. Debian 12.")
    owner: str | None = Field(default=None, description="Owning team.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels for selection.")

    @field_validator("hostname")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not re.fullmatch(_HOSTNAME, value):
            raise ValueError(
                f"{value!r} is not a host name: letters, digits and inner '-', in labels of "
                "1 to 63 characters separated by dots (e.g. web-01 or web-01.prod)"
            )
        return value

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str) -> str:
        value = value.strip()
        if _CANONICAL_IPV4.fullmatch(value):
            return value
        try:
            return str(ip_address(value))
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


class HostSelector(StrictModel):
    """Which hosts a runbook may touch: all of `tags`, a hostname glob, and, when given, only
    the hosts named in `hostnames` (an empty list names none: an alert with no host acts on
    nothing, never on every host).

    Example:
        >>> web01 = Host(id="1", hostname="lab-web-01", ip="127.10.0.2", tags=["lab", "web"])
        >>> HostSelector(tags=["web"], hostname_pattern="lab-web-*").matches(web01)
        True
        >>> HostSelector(hostnames=["lab-db-01"]).matches(web01)
        False
    """

    tags: list[str] = Field(default_factory=list, description="Every tag a host must have.")
    hostname_pattern: str | None = Field(
        default=None, description="Shell-style hostname pattern, e.g. web-*; empty for any."
    )
    hostnames: list[str] | None = Field(
        default=None,
        description="Exactly these hosts (e.g. the ones an alert fires for); unset for any.",
    )

    def matches(self, host: Host) -> bool:
        if not set(self.tags) <= set(host.tags):
            return False
        if self.hostnames is not None and host.hostname not in self.hostnames:
            return False
        return not self.hostname_pattern or fnmatch.fnmatchcase(
            host.hostname, self.hostname_pattern
        )
