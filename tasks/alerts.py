"""Alertmanager silences around a maintenance action."""

from __future__ import annotations

import re

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsflow.blocks.monitoring import Alertmanager
from opsflow.tasks.wording import plural


@task(name="Silence alerts", cache_policy=NO_CACHE)
def silence_hosts(
    alertmanager: Alertmanager, instances: list[str], minutes: float, comment: str
) -> str:
    """One silence matching exactly these `instance` labels; returns its id.

    Example:
        >>> silence_hosts(Alertmanager.load("lab"), ["127.10.0.2:9100"], 30, "restart")  # doctest: +SKIP
    """
    pattern = "|".join(re.escape(i) for i in sorted(instances))
    with alertmanager.get_client() as client:
        silence_id = client.create_silence({"instance": pattern}, minutes, comment, regex=True)
    get_run_logger().info(
        "silence %s for %s, %.0f min", silence_id, plural(len(instances), "host"), minutes
    )
    return silence_id


@task(name="Expire silence", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def expire_silence(alertmanager: Alertmanager, silence_id: str) -> None:
    """End the silence now (retried: expiring twice is harmless)."""
    with alertmanager.get_client() as client:
        client.expire_silence(silence_id)
    get_run_logger().info("silence %s expired", silence_id)
