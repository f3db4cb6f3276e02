"""Telling people: any Prefect notification block, ours (WeCom, DingTalk, Feishu) included."""

from __future__ import annotations

import inspect

from prefect import get_run_logger, task
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from prefect.utilities.asyncutils import run_coro_as_sync

from opsapi.errors import ConfigurationError


@task(name="Notify", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def notify(block: str, subject: str, body: str) -> None:
    """Send `subject` and `body` through the notification block named `block`.

    Args:
        block: ``<block-type-slug>/<name>``, e.g. ``wecom-webhook/ops-team`` or
            ``slack-webhook/sre``.

    Example:
        >>> notify("feishu-webhook/oncall", "Restart done", "3 hosts verified")   # doctest: +SKIP
    """
    if "/" not in block:
        raise ConfigurationError(
            f"notify_block {block!r} must be '<block-type-slug>/<name>', e.g. wecom-webhook/ops"
        )
    loaded = Block.load(block)
    if not isinstance(loaded, NotificationBlock):
        raise ConfigurationError(f"notify_block {block!r} is not a notification block")
    send = getattr(loaded, "send", None)
    if callable(send):
        send(subject, body)
    else:
        with loaded.raise_on_failure():
            result = loaded.notify(body, subject)
            if inspect.isawaitable(result):
                run_coro_as_sync(result)
    get_run_logger().info("notified %s: %s", block, subject)
