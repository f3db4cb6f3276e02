"""Every block refuses a key it does not have, naming the closest one; what an earlier version
saved at the top level (the transport settings) still loads, into `transport`."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.utilities.dispatch import get_registry_for_type
from pydantic import ValidationError

from opsflow.blocks import ExecutionBackendBlock, OpsPlatform, Prometheus, VaultConnection
from opsflow.blocks.registration import BLOCK_TYPES
from opsflow.opsapi.backend import ExecutionBackend


@pytest.mark.parametrize("block", BLOCK_TYPES, ids=lambda b: b.__name__)
def test_a_misspelt_field_is_refused_naming_the_field_meant(block: type[Block]) -> None:
    for field in block.model_fields:
        typo = field[:-1]  # "ur" for "url", "bearer_toke" for "bearer_token"
        with pytest.raises(ValidationError) as refused:
            block(**{typo: "x"})
        assert f"unknown field {typo!r} — did you mean {field!r}?" in str(refused.value)


def test_the_two_typos_of_the_issue_are_refused_and_nothing_is_kept() -> None:
    with pytest.raises(ValidationError, match="'tokn' — did you mean 'token'"):
        OpsPlatform(url="https://ops.example", tokn="token-123456")
    with pytest.raises(ValidationError, match="'bearer_tokn' — did you mean 'bearer_token'"):
        Prometheus(url="http://prometheus:9090", bearer_tokn="x")


def test_a_misspelt_transport_setting_is_refused_too() -> None:
    with pytest.raises(ValidationError, match="'timout' — did you mean 'timeout'"):
        OpsPlatform(url="https://ops.example", token="t", transport={"timout": 5})


def test_a_backend_block_opsflow_did_not_write_is_strict_too() -> None:
    class Inventory(ExecutionBackendBlock):
        _block_type_name = "Inventory Test Backend"
        url: str

        def get_client(self) -> ExecutionBackend:  # pragma: no cover - never called
            raise NotImplementedError

    try:
        assert Inventory(url="https://cmdb").url == "https://cmdb"
        with pytest.raises(ValidationError, match="'uri' — did you mean 'url'"):
            Inventory(uri="https://cmdb")
    finally:  # no other test sees this type among the backends
        get_registry_for_type(Block).pop("inventory-test-backend")


def test_a_typo_set_as_an_attribute_is_refused() -> None:
    platform = OpsPlatform(url="https://ops.example", token="token-123456")
    with pytest.raises(AttributeError, match="'tokn' — did you mean 'token'"):
        platform.tokn = "x"
    platform.page_size = 100  # a real field still can be set
    assert platform.page_size == 100


def test_a_refusal_never_shows_the_credential_beside_the_typo() -> None:
    with pytest.raises(ValidationError) as refused:
        OpsPlatform(url="https://ops.example", token="s3cret-token-0042", tokn="x")
    assert "s3cret" not in str(refused.value) and "0042" not in str(refused.value)


def test_a_document_saved_with_top_level_transport_settings_loads_them_into_transport() -> None:
    # What OpsPlatform saved before the transport settings model (git 25fe927^).
    saved = {
        "url": "https://ops.example",
        "token": "token-123456",
        "ca_cert": "/etc/ssl/ops-ca.pem",
        "verify_tls": True,
        "timeout": 12.0,
        "retries": 5,
        "audit_log": "/var/log/opsflow-audit.jsonl",
        "block_type_slug": "ops-platform",
    }
    platform = OpsPlatform.model_validate(saved)
    assert platform.transport.ca_cert == "/etc/ssl/ops-ca.pem"
    assert (platform.transport.timeout, platform.transport.retries) == (12.0, 5)
    assert platform.transport.audit_log == "/var/log/opsflow-audit.jsonl"
    assert platform.transport.pool_size == OpsPlatform(url="x", token="t").transport.pool_size


def test_a_setting_moved_in_keeps_the_blocks_own_transport_defaults() -> None:
    vault = VaultConnection.model_validate({"url": "https://vault:8200", "timeout": 3})
    assert vault.transport.timeout == 3
    prometheus = Prometheus.model_validate({"url": "http://p:9090", "verify_tls": False})
    assert prometheus.transport.verify_tls is False
    assert OpsPlatform.model_validate({"url": "x", "timeout": 3}).transport.audit_log == (
        "~/.opsflow/audit/{platform}.jsonl"  # the platform's own default, not the model's (None)
    )
