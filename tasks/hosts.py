"""Tasks over the platform's host inventory: one per API operation."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.gc_pause import paused_gc
from opsflow.opsapi.models import Host, HostSelector, HostSpec
from opsflow.tasks.host_selection import HostSelection, select
from opsflow.tasks.retrying import transient_failure
from opsflow.tasks.wording import plural

READ = {
    "retries": 2,
    "retry_delay_seconds": 3,
    "retry_condition_fn": transient_failure,
    "cache_policy": NO_CACHE,
}


@task(name="List hosts", **READ)
def list_hosts(platform: ExecutionBackendBlock, selector: HostSelector | None = None) -> list[Host]:
    """Every host in the inventory that the selector matches (all pages).

    Example:
        >>> list_hosts(OpsPlatform.load("lab"), HostSelector(tags=["web"]))   # doctest: +SKIP

    Raises:
        UnknownHosts: the selector names a host the inventory lacks (closest names given).
    """
    return _selected(platform, selector or HostSelector()).selected


@task(name="Select hosts", **READ)
def select_hosts(platform: ExecutionBackendBlock, selector: HostSelector) -> HostSelection:
    """The whole inventory and the hosts the selector picks from it; the log counts both.

    Example:
        >>> select_hosts(OpsPlatform.load("lab"), HostSelector(tags=["web"])).counted  # doctest: +SKIP
        '40 hosts listed, 20 selected by tag web'

    Raises:
        UnknownHosts: the selector names a host the inventory lacks (closest names given).
    """
    return _selected(platform, selector)


def _selected(platform: ExecutionBackendBlock, selector: HostSelector) -> HostSelection:
    # The whole inventory, not the platform's tag filter: the counts say what the selector
    # selected out of it, and a named host is checked against every host. One collector pause
    # for the whole list, not only one per page: between pages the collector came back to a
    # heap grown by a page's hosts and ran full collections over all of it, six in a
    # 100,000-host load-report (0.7 s holding the GIL), finding nothing to free. Here, in a
    # run, not in the client: a long-lived process (the alert receiver) would keep its
    # collector off across every network wait of every listing.
    with platform.get_client() as client, paused_gc():
        inventory = client.list_hosts()
    selection = select(inventory, selector)
    get_run_logger().info("inventory: %s", selection.counted)
    return selection


@task(name="Get host", **READ)
def get_host(platform: ExecutionBackendBlock, host_id: str) -> Host:
    """One host by id; `NotFound` when it does not exist."""
    with platform.get_client() as client:
        return client.get_host(host_id)


@task(name="Create host", cache_policy=NO_CACHE)
def create_host(platform: ExecutionBackendBlock, spec: HostSpec) -> Host:
    """Register a host; `Conflict` when its hostname or IP exists. Never retried blindly."""
    with platform.get_client() as client:
        host = client.create_host(spec)
    get_run_logger().info("created host %s (%s) as id %s", host.hostname, host.ip, host.id)
    return host


@task(name="Replace host", **READ)
def replace_host(platform: ExecutionBackendBlock, host_id: str, spec: HostSpec) -> Host:
    """Overwrite a host's record (PUT, idempotent)."""
    with platform.get_client() as client:
        return client.replace_host(host_id, spec)


@task(name="Update host", cache_policy=NO_CACHE)
def update_host(platform: ExecutionBackendBlock, host_id: str, changes: dict[str, Any]) -> Host:
    """Change some fields of a host (PATCH)."""
    with platform.get_client() as client:
        return client.update_host(host_id, changes)


@task(name="Delete host", cache_policy=NO_CACHE)
def delete_host(platform: ExecutionBackendBlock, host_id: str) -> None:
    """Remove a host from the inventory."""
    with platform.get_client() as client:
        client.delete_host(host_id)
    get_run_logger().info("deleted host %s", host_id)


@task(name="Create hosts", cache_policy=NO_CACHE)
def create_hosts(platform: ExecutionBackendBlock, specs: list[HostSpec]) -> list[Host]:
    """Register many hosts in one task run; stops at the first refusal (nothing is retried)."""
    created: list[Host] = []
    with platform.get_client() as client:
        for spec in specs:
            created.append(client.create_host(spec))
    get_run_logger().info("created %s", plural(len(created), "host"))
    return created


@task(name="Replace hosts", **READ)
def replace_hosts(
    platform: ExecutionBackendBlock, changes: list[tuple[str, HostSpec]]
) -> list[Host]:
    """Overwrite many host records (PUT, idempotent) in one task run."""
    with platform.get_client() as client:
        replaced = [client.replace_host(host_id, spec) for host_id, spec in changes]
    get_run_logger().info("updated %s", plural(len(replaced), "host"))
    return replaced
