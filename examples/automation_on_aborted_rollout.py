"""A Prefect automation: tell the on-call WeCom group whenever a rollout aborts.

python examples/automation_on_aborted_rollout.py wecom-webhook/ops
"""

from __future__ import annotations

import sys

from prefect.automations import Automation
from prefect.blocks.core import Block
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture


def aborted_rollout_automation(notification_block: str) -> Automation:
    """Every `opsflow.rollout.aborted` event sends its reason through the block."""
    block = Block.load(notification_block)
    return Automation(
        name="opsflow: page on aborted rollouts",
        trigger=EventTrigger(
            expect={"opsflow.rollout.aborted"},
            match={"prefect.resource.id": "opsflow.runbook.*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block._block_document_id,
                subject="opsflow rollout aborted",
                body="{{ event.resource.name }}: {{ event.payload.reason }}",
            )
        ],
    )


if __name__ == "__main__":
    created = aborted_rollout_automation(sys.argv[1]).create()
    print(f"automation {created.name} created: {created.id}")
