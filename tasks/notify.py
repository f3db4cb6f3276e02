"""Telling people: any Prefect notification block, ours (WeCom, DingTalk, Feishu) included.

Every runbook has a `notify_block` parameter; `notify_on_finish` is the flow hook that sends
the run's one-line summary on completion, abort and failure.
"""

from __future__ import annotations

import inspect
from typing import Any

from prefect import get_run_logger, task
from prefect.blocks.abstract import NotificationBlock, NotificationError
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_logger
from prefect.utilities.asyncutils import run_coro_as_sync

from opsflow.opsapi.errors import ConfigurationError, NotificationFailed

logger = get_logger("opsflow.notify")


def send_notification(block: str, subject: str, body: str) -> None:
    """Send through the notification block `<block-type-slug>/<name>`; raise when it fails.

    Raises:
        ConfigurationError: `block` is not `<type-slug>/<name>` of a notification block.
        NotificationFailed: the service did not take the message.
    """
    if "/" not in block:
        raise ConfigurationError(
            f"notify_block {block!r} must be '<block-type-slug>/<name>', e.g. wecom-webhook/ops"
        )
    loaded = Block.load(block)
    if not isinstance(loaded, NotificationBlock):
        raise ConfigurationError(f"notify_block {block!r} is not a notification block")
    try:
        with loaded.raise_on_failure():
            result = loaded.notify(body, subject)
            if inspect.isawaitable(result):  # a block whose notify is async only
                run_coro_as_sync(result)
    except NotificationError as exc:
        raise NotificationFailed(f"{block} did not take the message: {exc.log}") from None


@task(name="Notify", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def notify(block: str, subject: str, body: str) -> None:
    """Send `subject` and `body` through the notification block named `block`.

    Example:
        >>> notify("feishu-webhook/oncall", "Restart done", "3 hosts verified")   # doctest: +SKIP
    """
    send_notification(block, subject, body)
    get_run_logger().info("notified %s: %s", block, subject)


def notify_on_finish(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the run's summary to its parameters' `notify_block`, if one is set."""
    block = next(
        (
            p.get("notify_block")
            for p in flow_run.parameters.values()
            if isinstance(p, dict) and p.get("notify_block")
        ),
        None,
    )
    if not block:
        return
    result = state.result(raise_on_failure=False) if state.is_completed() or state.data else None
    summary = getattr(result, "summary", None) or state.message or state.name
    outcome = getattr(result, "outcome", None) or state.name.lower()
    try:
        if not isinstance(block, str):  # a block picked in the UI: its reference, as stored
            from opsflow.tasks.parameters import notification_block_name

            block = notification_block_name(block)
        send_notification(block, f"{flow.name} {outcome}", str(summary))
    except Exception as exc:  # noqa: BLE001 - a failed notification must not change the run
        logger.error("could not notify %s about %s: %s", block, flow_run.name, exc)
