"""Credentials out of URLs, text and mappings."""

from __future__ import annotations

from opsflow.opsapi.audit import redact_url
from opsflow.opsapi.redaction import mask_secrets, redact_mapping, register_secret


def test_user_info_and_secret_query_parameters_are_dropped_from_urls():
    url = "https://bot:hunter2@chat.example.com/robot/send?access_token=abc123&page=2"

    assert redact_url(url) == "https://chat.example.com/robot/send?access_token=%2A%2A%2A&page=2"


def test_a_registered_secret_in_a_url_path_is_masked():
    register_secret("feishu-hook-0123456789")

    redacted = redact_url("https://open.feishu.cn/open-apis/bot/v2/hook/feishu-hook-0123456789")

    assert redacted == "https://open.feishu.cn/open-apis/bot/v2/hook/***"


def test_auth_schemes_in_text_are_masked_even_when_never_registered():
    assert mask_secrets("sent Authorization: Bearer eyJhbGciOi.x.y") == (
        "sent Authorization: Bearer ***"
    )


def test_short_values_are_not_registered_so_ordinary_text_survives():
    register_secret("abc")

    assert mask_secrets("abc def") == "abc def"


def test_nested_mappings_are_redacted_by_key_name():
    data = {"hosts": [{"password": "x", "name": "web"}], "X-Vault-Token": "s.1", "page": 1}

    assert redact_mapping(data) == {
        "hosts": [{"password": "***", "name": "web"}],
        "X-Vault-Token": "***",
        "page": 1,
    }
