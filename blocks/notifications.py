"""Chat-bot notification blocks Prefect does not ship: WeCom, DingTalk (signed), Feishu.

They follow Prefect's `NotificationBlock` contract, so Prefect automations (which run them
inside the Prefect server) can use them as well as runbooks: `notify(body, subject)` is
synchronous in synchronous code and awaitable in the server's event loop; a refused message is
logged, or raised as Prefect's `NotificationError` inside `raise_on_failure()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import anyio.to_thread
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.blocks.abstract import NotificationBlock, NotificationError
from pydantic import Field, SecretStr

from opsflow.blocks.docs import code_example, docs_url
from opsflow.blocks.strict import StrictBlock
from opsflow.blocks.transport import client_transport, transport_field
from opsflow.blocks.vault import VaultSecret, credential, from_vault_field
from opsflow.opsapi.chat import ChatWebhook
from opsflow.opsapi.errors import OpsAPIError
from opsflow.opsapi.transport import Transport


class ChatWebhookBlock(StrictBlock, NotificationBlock, ABC):
    """A chat bot reached by webhook; abstract, so it is no block type of its own."""

    _documentation_url = docs_url("notifications")

    transport: Transport = transport_field(timeout=10.0, retries=2)

    @abstractmethod
    def webhook(self) -> ChatWebhook:
        """The configured bot."""

    def _send(self, body: str, subject: str | None) -> None:
        try:
            self.webhook().send(subject or "", body)
        except OpsAPIError as exc:
            if self._raise_on_failure:
                raise NotificationError(log=str(exc)) from exc
            self.logger.error("%s notification not sent: %s", self.get_block_type_name(), exc)

    async def anotify(self, body: str, subject: str | None = None) -> None:
        """Send from async code (the Prefect server's automations await this)."""
        await anyio.to_thread.run_sync(self._send, body, subject)

    @async_dispatch(anotify)
    def notify(self, body: str, subject: str | None = None) -> None:
        """Send `body` under `subject`; see the class docstring for what a refusal does."""
        self._send(body, subject)


class WeComWebhook(ChatWebhookBlock):
    """A WeCom (企业微信) group bot.

    Example:
        >>> WeComWebhook(key="...").notify("3 hosts verified", "Restart done")  # doctest: +SKIP
    """

    _block_type_name = "WeCom Webhook"
    _description = "Sends markdown messages to a WeCom group bot and checks its errcode."
    _code_example = code_example("WeComWebhook", '{var}.notify("3 hosts verified", "Restart done")')

    url: str = Field(default="https://qyapi.weixin.qq.com", description="WeCom API root.")
    key: SecretStr | None = Field(
        default=None, description="The bot's webhook key (the key= of its URL)."
    )
    key_from_vault: VaultSecret | None = from_vault_field("webhook key")

    def webhook(self) -> ChatWebhook:
        return ChatWebhook.wecom(
            self.url,
            credential(self, "key"),  # type: ignore[arg-type]
            transport=client_transport("WeCom", self.transport),
        )


class DingTalkWebhook(ChatWebhookBlock):
    """A DingTalk (钉钉) group robot, signed when a secret is set.

    Example:
        >>> DingTalkWebhook(access_token="...", secret="SEC...").notify("ok", "Done")  # doctest: +SKIP
    """

    _block_type_name = "DingTalk Webhook"
    _description = (
        "Sends markdown messages to a DingTalk robot (HMAC-signed) and checks its errcode."
    )
    _code_example = code_example(
        "DingTalkWebhook", '{var}.notify("3 hosts verified", "Restart done")'
    )

    url: str = Field(default="https://oapi.dingtalk.com", description="DingTalk API root.")
    access_token: SecretStr | None = Field(default=None, description="The robot's access_token.")
    access_token_from_vault: VaultSecret | None = from_vault_field("access_token")
    secret: SecretStr | None = Field(default=None, description="Signing secret (SEC...), if set.")
    secret_from_vault: VaultSecret | None = from_vault_field("signing secret")

    def webhook(self) -> ChatWebhook:
        return ChatWebhook.dingtalk(
            self.url,
            credential(self, "access_token"),  # type: ignore[arg-type]
            credential(self, "secret", required=False),
            transport=client_transport("DingTalk", self.transport),
        )


class FeishuWebhook(ChatWebhookBlock):
    """A Feishu / Lark (飞书) custom bot, signed when a secret is set.

    Example:
        >>> FeishuWebhook(hook_token="...", secret="...").notify("ok", "Done")  # doctest: +SKIP
    """

    _block_type_name = "Feishu Webhook"
    _description = (
        "Sends text messages to a Feishu custom bot (optionally signed) and checks its code."
    )
    _code_example = code_example(
        "FeishuWebhook", '{var}.notify("3 hosts verified", "Restart done")'
    )

    url: str = Field(default="https://open.feishu.cn", description="Feishu API root.")
    hook_token: SecretStr | None = Field(
        default=None, description="The token at the end of the bot's webhook URL."
    )
    hook_token_from_vault: VaultSecret | None = from_vault_field("hook token")
    secret: SecretStr | None = Field(default=None, description="Signature secret, if set.")
    secret_from_vault: VaultSecret | None = from_vault_field("signature secret")

    def webhook(self) -> ChatWebhook:
        return ChatWebhook.feishu(
            self.url,
            credential(self, "hook_token"),  # type: ignore[arg-type]
            credential(self, "secret", required=False),
            transport=client_transport("Feishu", self.transport),
        )
