"""Chat-bot webhooks (WeCom, DingTalk, Feishu): signed where the service signs, and checked.

These services answer HTTP 200 even when they refuse a message; the refusal is an error code in
the body (`errcode` for WeCom and DingTalk, `code` for Feishu), so that is what is checked.
Keys and tokens travel in the URL, so they are registered as secrets and masked in errors and
the audit log.

Example:
    >>> bot = ChatWebhook.wecom("https://qyapi.weixin.qq.com", key="...")   # doctest: +SKIP
    >>> bot.send("Restart finished", "3 hosts verified")                     # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from opsflow.opsapi.errors import NotificationFailed
from opsflow.opsapi.http import JSONClient
from opsflow.opsapi.redaction import register_secret
from opsflow.opsapi.transport import Transport


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's signature: base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


@dataclass
class ChatWebhook:
    """One bot: where to POST, what to send, how to tell success."""

    service: str
    base_url: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)
    transport: Transport = field(default_factory=lambda: Transport(timeout=10, retries=2))

    @classmethod
    def wecom(cls, base_url: str, key: str, **kw: Any) -> ChatWebhook:
        register_secret(key)
        return cls("WeCom", base_url, "/cgi-bin/webhook/send", {"key": key}, **kw)

    @classmethod
    def dingtalk(
        cls, base_url: str, access_token: str, secret: str | None = None, **kw: Any
    ) -> ChatWebhook:
        register_secret(access_token)
        register_secret(secret)
        return cls(
            "DingTalk", base_url, "/robot/send", {"access_token": access_token}, secret=secret, **kw
        )

    @classmethod
    def feishu(
        cls, base_url: str, hook_token: str, secret: str | None = None, **kw: Any
    ) -> ChatWebhook:
        register_secret(hook_token)
        register_secret(secret)
        return cls("Feishu", base_url, f"/open-apis/bot/v2/hook/{hook_token}", secret=secret, **kw)

    def _payload(self, subject: str, body: str) -> tuple[dict[str, str], dict[str, Any]]:
        text = f"{subject}\n\n{body}" if subject else body
        params = dict(self.params)
        if self.service == "WeCom":
            return params, {
                "msgtype": "markdown",
                "markdown": {"content": f"**{subject}**\n{body}" if subject else body},
            }
        if self.service == "DingTalk":
            if self.secret:
                now = int(time.time() * 1000)
                params.update(timestamp=str(now), sign=dingtalk_sign(self.secret, now))
            return params, {
                "msgtype": "markdown",
                "markdown": {"title": subject or body[:30], "text": f"### {subject}\n{body}"},
            }
        payload: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if self.secret:
            now = int(time.time())
            payload.update(timestamp=str(now), sign=feishu_sign(self.secret, now))
        return params, payload

    def send(self, subject: str, body: str) -> None:
        """Post the message; `NotificationFailed` unless the service says it took it."""
        params, payload = self._payload(subject, body)
        with JSONClient(self.base_url, transport=self.transport) as client:
            client.name = f"{self.service} webhook"
            answer = client.request("POST", self.path, params=params, json=payload)
        code = _error_code(answer)
        if code not in (0, "0"):
            message = (answer or {}).get("errmsg") or (answer or {}).get("msg") or answer
            raise NotificationFailed(f"{self.service} refused the message: code {code}, {message}")


def _error_code(answer: Any) -> Any:
    if not isinstance(answer, dict):
        return "no JSON answer"
    for key in ("errcode", "code", "StatusCode"):
        if key in answer:
            return answer[key]
    return "no error code in the answer"
