"""Every credential opsflow needs can come from Vault, the same way in every block: a
`SecretStr` field, or its `<field>_from_vault` reference read at run time."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from opsflow.blocks import (
    DingTalkWebhook,
    FeishuWebhook,
    Prometheus,
    VaultConnection,
    VaultSecret,
    WeComWebhook,
)
from opsflow.opsapi import ConfigurationError, Transport
from tests.chat_receiver import chat_receiver
from tests.test_vault_renewal import root_client


@pytest.fixture
def chat_secrets(lab) -> tuple[VaultConnection, str, dict[str, str]]:
    """Chat keys, signing secrets and a Prometheus token at one Vault path."""
    path = f"opsflow/chat-{uuid.uuid4().hex[:6]}"
    values = {
        "wecom_key": f"wecom-{uuid.uuid4().hex}",
        "ding_token": f"ding-{uuid.uuid4().hex}",
        "ding_secret": f"SEC{uuid.uuid4().hex}",
        "feishu_token": f"feishu-{uuid.uuid4().hex}",
        "feishu_secret": f"fs-{uuid.uuid4().hex}",
        "prometheus": f"prom-{uuid.uuid4().hex}",
    }
    root_client(lab).secrets.kv.v2.create_or_update_secret(path=path, secret=values)
    vault = VaultConnection(
        url=lab.config.vault_url,
        auth_method="token",
        token=SecretStr(lab.secrets["vault_root_token"]),
        transport=Transport(timeout=10, ca_cert=str(lab.config.vault_ca_cert)),
    )
    return vault, path, values


def ref(chat_secrets, key: str) -> VaultSecret:
    vault, path, _ = chat_secrets
    return VaultSecret(vault=vault, path=path, key=key)


def test_chat_keys_and_signing_secrets_come_from_vault(chat_secrets):
    _, _, values = chat_secrets
    with chat_receiver() as receiver:
        WeComWebhook(url=receiver.url, key_from_vault=ref(chat_secrets, "wecom_key")).notify(
            "body", "subject"
        )
        DingTalkWebhook(
            url=receiver.url,
            access_token_from_vault=ref(chat_secrets, "ding_token"),
            secret_from_vault=ref(chat_secrets, "ding_secret"),
        ).notify("body", "subject")
        receiver.answer = {"code": 0, "msg": "success"}
        FeishuWebhook(
            url=receiver.url,
            hook_token_from_vault=ref(chat_secrets, "feishu_token"),
            secret_from_vault=ref(chat_secrets, "feishu_secret"),
        ).notify("body", "subject")

    wecom, ding, feishu = receiver.received
    assert wecom.query["key"] == values["wecom_key"]
    assert ding.query["access_token"] == values["ding_token"]
    assert ding.query["sign"]  # signed with the secret read from Vault
    assert feishu.path.endswith(values["feishu_token"])
    assert feishu.body["sign"]


def test_the_prometheus_bearer_token_comes_from_vault(chat_secrets):
    _, _, values = chat_secrets
    client = Prometheus(
        url="http://127.0.0.1:9", bearer_token_from_vault=ref(chat_secrets, "prometheus")
    ).get_client()
    assert client.session.headers["Authorization"] == f"Bearer {values['prometheus']}"


def test_a_block_with_neither_names_both_fields():
    with pytest.raises(ConfigurationError, match="has no key: set key or key_from_vault"):
        WeComWebhook(url="http://127.0.0.1:9").webhook()


def test_the_runbooks_role_can_neither_read_nor_list_a_sibling_secret(lab, chat_secrets):
    """The lab's AppRole reads the platform token and the Salt password, and nothing beside."""
    from opsflow.opsapi import VaultRefused

    _, sibling, _ = chat_secrets  # opsflow/chat-..., next to opsflow/platform
    runbooks = VaultConnection.load("lab").get_client()
    assert runbooks.read_secret("opsflow/platform")["token"] == lab.secrets["platform_token"]
    with pytest.raises(VaultRefused, match=f"Vault denied reading 'secret/{sibling}'"):
        runbooks.read_secret(sibling)
    with pytest.raises(Exception, match="permission denied"):
        runbooks._hvac.secrets.kv.v2.list_secrets(path="opsflow")
