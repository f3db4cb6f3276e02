"""Runbook: register hosts from a CSV file or rows — validated first, idempotent.

Example:
    >>> register_hosts(RegisterHostsParams(csv_path="hosts.csv")).created        # doctest: +SKIP
    ['web-01', 'web-02']
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from opsflow.blocks import OpsPlatform
from opsflow.tasks.host_import import read_host_rows, sort_against_inventory
from opsflow.tasks.hosts import create_hosts, list_hosts, replace_hosts
from opsflow.tasks.notify import notify_on_finish
from opsflow.tasks.parameters import DEFAULT_BLOCK_HELP, StrictModel, by_name
from opsflow.tasks.runbook import chosen


class RegisterHostsParams(StrictModel):
    """Where the hosts come from and what to do with ones that exist."""

    platform: Annotated[OpsPlatform | None, by_name(OpsPlatform)] = Field(
        default=None, description=f"The ops platform to register the hosts in. {DEFAULT_BLOCK_HELP}"
    )
    csv_path: str | None = Field(
        default=None, description="CSV with hostname, ip[, os, owner, tags] (tags split by ;)."
    )
    rows: list[dict[str, Any]] | None = Field(
        default=None, description="Rows instead of a file: hostname, ip, os, owner, tags."
    )
    update_existing: bool = Field(
        default=False, description="Update hosts that exist and differ; off: skip them."
    )
    dry_run: bool = Field(default=False, description="Validate and report; register nothing.")
    notify_block: str | None = Field(
        default=None, description="Notification block (type-slug/name) told how the run ended."
    )


class RegisterHostsResult(BaseModel):
    """What was created, updated and skipped."""

    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    dry_run: bool = False

    @property
    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.skipped)} skipped{' (dry run)' if self.dry_run else ''}"
        )


@flow(name="register-hosts", on_completion=[notify_on_finish], on_failure=[notify_on_finish])
def register_hosts(params: RegisterHostsParams) -> RegisterHostsResult:
    """Validate every row, compare with the inventory, then create and update."""
    specs = read_host_rows(params.csv_path, params.rows)  # any bad row: nothing happens
    platform = chosen(params.platform, OpsPlatform, "platform")
    create, update, skipped = sort_against_inventory(
        specs, list_hosts(platform), params.update_existing
    )
    result = RegisterHostsResult(
        created=[s.hostname for s in create],
        updated=[s.hostname for _, s in update],
        skipped=skipped,
        dry_run=params.dry_run,
    )
    if not params.dry_run:
        if create:
            create_hosts(platform, create)
        if update:
            replace_hosts(platform, update)
    rows = [
        {"hostname": name, "action": action}
        for action, names in (
            ("created", result.created),
            ("updated", result.updated),
            ("skipped", result.skipped),
        )
        for name in names
    ]
    create_table_artifact(
        rows or [{"hostname": "-", "action": "nothing"}],
        key="register-hosts",
        description=result.summary,
    )
    return result
