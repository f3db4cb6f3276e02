"""Runbook: register hosts from a CSV file or rows — validated first, idempotent.

Example:
    >>> register_hosts(RegisterHostsParams(csv_path="hosts.csv")).created        # doctest: +SKIP
    ['web-01', 'web-02']
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from opsflow.flows.runbooks.runbook_flow import runbook
from opsflow.opsapi.backend import RegistersHosts
from opsflow.opsapi.errors import ConfigurationError
from opsflow.tasks.host_import import compare_with_inventory, read_host_rows
from opsflow.tasks.hosts import create_hosts, list_hosts, replace_hosts
from opsflow.tasks.parameters import (
    DEFAULT_BLOCK_HELP,
    PLATFORM_TYPES,
    NotifyBlock,
    Platform,
    StrictModel,
    existing_file,
    notify_block_field,
)
from opsflow.tasks.runbook import chosen, with_deployment_defaults
from opsflow.tasks.wording import plural


class RegisterHostsParams(StrictModel):
    """Where the hosts come from and what to do with ones that exist."""

    FILES: ClassVar[dict[str, str]] = {"csv_path": "a CSV file"}

    platform: Platform = Field(
        default=None, description=f"The ops platform to register the hosts in. {DEFAULT_BLOCK_HELP}"
    )
    csv_path: str | None = Field(
        default=None,
        description="CSV file with a header: hostname,ip[,os,owner,tags] (tags split by ;). "
        "See examples/hosts.csv.",
    )
    rows: list[dict[str, Any]] | None = Field(
        default=None,
        description='Rows instead of a file, as JSON: [{"hostname": "web-01", "ip": '
        '"10.0.0.1", "os": "Debian 12", "owner": "sre", "tags": ["web"]}].',
    )
    update_existing: bool = Field(
        default=False, description="Update hosts that exist and differ; off: only name them."
    )
    ignore_extra_columns: bool = Field(
        default=False,
        description="Drop columns other than hostname, ip, os, owner, tags (an inventory "
        "export has more) instead of refusing the file.",
    )
    dry_run: bool = Field(default=False, description="Validate and report; register nothing.")
    notify_block: NotifyBlock = notify_block_field()

    @field_validator(*FILES)
    @classmethod
    def _a_readable_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return existing_file(value, cls.FILES[info.field_name])

    @model_validator(mode="after")
    def _exactly_one_source_every_row_valid(self) -> RegisterHostsParams:
        if (self.csv_path is None) == (self.rows is None):
            raise ValueError("give exactly one of csv_path or rows")
        # Refused here, before any server or platform is asked: every bad row, named.
        read_host_rows(self.csv_path, self.rows, ignore_extra_columns=self.ignore_extra_columns)
        return self


class RegisterHostsResult(BaseModel):
    """What was created, updated, left as it was, and what differs but was not updated."""

    table_columns: ClassVar[tuple[str, ...]] = ("hostname", "action", "changes")

    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    differ: list[str] = Field(
        default_factory=list, description="Exist and differ; update_existing would change them."
    )
    rows: list[dict[str, str]] = Field(default_factory=list)
    dry_run: bool = False

    @property
    def summary(self) -> str:
        if self.dry_run:
            parts = [
                f"would create {plural(len(self.created), 'host')}",
                f"would update {len(self.updated)}",
            ]
        else:
            parts = [f"{len(self.created)} created", f"{len(self.updated)} updated"]
        parts.append(f"{len(self.unchanged)} unchanged")
        if self.differ:
            parts.append(f"{len(self.differ)} differ (not updated: --update-existing changes them)")
        return ", ".join(parts) + (" (dry run: nothing registered)" if self.dry_run else "")


@runbook(name="register-hosts")
def register_hosts(params: RegisterHostsParams) -> RegisterHostsResult:
    """Register hosts from a CSV file or rows: every row validated first, idempotent."""
    params = with_deployment_defaults(params, "params")
    specs = read_host_rows(  # any bad row: nothing happens
        params.csv_path, params.rows, ignore_extra_columns=params.ignore_extra_columns
    )
    platform = chosen(params.platform, PLATFORM_TYPES, "platform")
    with platform.get_client() as client:  # nothing is read or sent yet
        registers = isinstance(client, RegistersHosts)
    if not registers:
        raise ConfigurationError(
            f"platform: the {platform.get_block_type_name()} backend cannot register hosts (its "
            "client has no create_host/replace_host): register them in that system itself"
        )
    diff = compare_with_inventory(specs, list_hosts(platform))
    update = diff.changed if params.update_existing else []
    result = RegisterHostsResult(
        created=[s.hostname for s in diff.new],
        updated=[s.hostname for _, s, _ in update],
        unchanged=diff.unchanged,
        differ=[] if params.update_existing else [s.hostname for _, s, _ in diff.changed],
        dry_run=params.dry_run,
    )
    if not params.dry_run:
        if diff.new:
            create_hosts(platform, diff.new)
        if update:
            replace_hosts(platform, [(host_id, spec) for host_id, spec, _ in update])
    would = "would be " if params.dry_run else ""
    result.rows = (
        [{"hostname": h, "action": f"{would}created", "changes": ""} for h in result.created]
        + [
            {"hostname": h, "action": f"{would}updated", "changes": diff.changes_text(h)}
            for h in result.updated
        ]
        + [
            {"hostname": h, "action": "differs, not updated", "changes": diff.changes_text(h)}
            for h in result.differ
        ]
        + [{"hostname": h, "action": "unchanged", "changes": ""} for h in result.unchanged]
    )
    create_table_artifact(
        result.rows or [{"hostname": "-", "action": "nothing"}],
        key="register-hosts",
        description=result.summary,
    )
    return result
