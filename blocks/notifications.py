"""Chat-bot notification blocks Prefect does not ship: WeCom, DingTalk (signed), Feishu.

They are Prefect `NotificationBlock`s, so Prefect automations can use them too, and have a
plain `send(subject, body)` for runbooks.
"""

from __future__ import annotations

import anyio.to_thread
from prefect.blocks.abstract import NotificationBlock
from pydantic import Field, SecretStr

from opsflow.blocks.tls import tls_verify
from opsflow.opsapi.chat import ChatWebhook


class _ChatBlock(NotificationBlock):
    ca_cert: str | None = Field(default=None, description="CA bundle path, for a private endpoint.")
    timeout: float = Field(default=10.0, gt=0, description="Seconds per request.")

    def webhook(self) -> ChatWebhook:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def send(self, subject: str, body: str) -> None:
        """Send now; raises `NotificationFailed` when the service refuses."""
        self.webhook().send(subject, body)

    async def notify(self, body: str, subject: str | None = None) -> None:
        """Prefect's notification interface (used by automations)."""
        await anyio.to_thread.run_sync(self.send, subject or "", body)


class WeComWebhook(_ChatBlock):
    """A WeCom (企业微信) group bot.

    Example:
        >>> WeComWebhook(key="...").send("Restart done", "3 hosts verified")   # doctest: +SKIP
    """

    _block_type_name = "WeCom Webhook"
    _description = "Sends markdown messages to a WeCom group bot and checks its errcode."

    url: str = Field(default="https://qyapi.weixin.qq.com", description="WeCom API root.")
    key: SecretStr = Field(description="The bot's webhook key (the key= of its URL).")

    def webhook(self) -> ChatWebhook:
        return ChatWebhook.wecom(
            self.url,
            self.key.get_secret_value(),
            timeout=self.timeout,
            verify=tls_verify("WeCom", self.ca_cert, True),
        )


class DingTalkWebhook(_ChatBlock):
    """A DingTalk (钉钉) group robot, signed when a secret is set.

    Example:
        >>> DingTalkWebhook(access_token="...", secret="SEC...").send("Done", "ok")  # doctest: +SKIP
    """

    _block_type_name = "DingTalk Webhook"
    _description = (
        "Sends markdown messages to a DingTalk robot (HMAC-signed) and checks its errcode."
    )

    url: str = Field(default="https://oapi.dingtalk.com", description="DingTalk API root.")
    access_token: SecretStr = Field(description="The robot's access_token.")
    secret: SecretStr | None = Field(default=None, description="Signing secret (SEC...), if set.")

    def webhook(self) -> ChatWebhook:
        return ChatWebhook.dingtalk(
            self.url,
            self.access_token.get_secret_value(),
            self.secret.get_secret_value() if self.secret else None,
            timeout=self.timeout,
            verify=tls_verify("DingTalk", self.ca_cert, True),
        )


class FeishuWebhook(_ChatBlock):
    """A Feishu / Lark (飞书) custom bot, signed when a secret is set.

    Example:
        >>> FeishuWebhook(hook_token="...", secret="...").send("Done", "ok")     # doctest: +SKIP
    """

    _block_type_name = "Feishu Webhook"
    _description = (
        "Sends text messages to a Feishu custom bot (optionally signed) and checks its code."
    )

    url: str = Field(default="https://open.feishu.cn", description="Feishu API root.")
    hook_token: SecretStr = Field(description="The token at the end of the bot's webhook URL.")
    secret: SecretStr | None = Field(default=None, description="Signature secret, if set.")

    def webhook(self) -> ChatWebhook:
        return ChatWebhook.feishu(
            self.url,
            self.hook_token.get_secret_value(),
            self.secret.get_secret_value() if self.secret else None,
            timeout=self.timeout,
            verify=tls_verify("Feishu", self.ca_cert, True),
        )
