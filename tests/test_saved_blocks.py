"""Blocks as a Prefect API stores them: a typo never reaches it, and a document an earlier
opsflow saved (transport settings at the top level) loads with every setting it had."""

from __future__ import annotations

import uuid

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.exceptions import ObjectNotFound
from pydantic import ValidationError

from opsflow.blocks import OpsPlatform


def saved_as(name: str, data: dict) -> None:
    """Save an OpsPlatform named `name`, then overwrite its document with `data` as it is."""
    document_id = OpsPlatform(url="https://ops.example", token="token-123456").save(name)
    with get_client(sync_client=True) as client:
        client.update_block_document(
            document_id, BlockDocumentUpdate(data=data, merge_existing_data=False)
        )


def test_a_typo_set_on_a_loaded_block_is_refused_and_the_saved_one_is_unchanged() -> None:
    name = f"typo-{uuid.uuid4().hex[:8]}"
    OpsPlatform(url="https://ops.example", token="token-123456").save(name)
    platform = OpsPlatform.load(name)

    with pytest.raises(AttributeError, match="'tokn' — did you mean 'token'"):
        platform.tokn = "token-654321"
    platform.save(name, overwrite=True)

    assert OpsPlatform.load(name).token.get_secret_value() == "token-123456"


def test_a_document_an_earlier_version_saved_loads_with_its_transport_settings() -> None:
    name = f"old-{uuid.uuid4().hex[:8]}"
    saved_as(
        name,
        {
            "url": "https://ops.example",
            "token": "token-123456",
            "ca_cert": "/etc/ssl/ops-ca.pem",
            "verify_tls": True,
            "timeout": 12.0,
            "retries": 5,
            "audit_log": None,
        },
    )
    for platform in (OpsPlatform.load(name), Block.load(f"ops-platform/{name}")):
        assert isinstance(platform, OpsPlatform)
        assert platform.transport.ca_cert == "/etc/ssl/ops-ca.pem"
        assert (platform.transport.timeout, platform.transport.retries) == (12.0, 5)
        assert platform.transport.audit_log is None
        assert platform.token.get_secret_value() == "token-123456"

    # Saved again (Prefect keeps the old keys beside), then edited: the edit holds.
    OpsPlatform.load(name).save(name, overwrite=True)
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name, "ops-platform")
        client.update_block_document(
            document.id, BlockDocumentUpdate(data={"transport": {"timeout": 20.0}})
        )
    assert OpsPlatform.load(name).transport.timeout == 20.0


def test_a_saved_document_with_a_key_no_version_had_is_refused_by_name() -> None:
    name = f"stray-{uuid.uuid4().hex[:8]}"
    saved_as(name, {"url": "https://ops.example", "token": "token-123456", "tokn": "x"})
    with pytest.raises(RuntimeError) as refused:
        OpsPlatform.load(name)
    assert "'tokn' — did you mean 'token'" in str(refused.value.__cause__)
    assert "token-123456" not in str(refused.value.__cause__)  # errors never show the input

    # Prefect's own advice in that error, `validate=False`, loads it without the stray key.
    platform = OpsPlatform.load(name, validate=False)
    assert platform.token.get_secret_value() == "token-123456"
    assert "tokn" not in platform.model_dump()


def test_a_missing_block_is_still_not_found() -> None:
    with pytest.raises((ValueError, ObjectNotFound)):
        OpsPlatform.load(f"missing-{uuid.uuid4().hex[:8]}")


def test_a_runbook_given_that_saved_block_says_what_is_wrong_with_it_in_one_line() -> None:
    from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy

    name = f"stray-{uuid.uuid4().hex[:8]}"
    saved_as(name, {"url": "https://ops.example", "token": "token-123456", "tokn": "x"})
    with pytest.raises(ValidationError) as refused:
        RestartPolicy(platform=f"ops-platform/{name}", prometheus=None)
    assert (
        f"the saved Ops Platform block {name!r} is not valid: unknown field 'tokn' — did you "
        "mean 'token'? (correct it in the Prefect UI, or delete it and save it anew)"
    ) in str(refused.value)
