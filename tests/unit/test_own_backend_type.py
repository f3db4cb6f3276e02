"""A backend block type opsflow did not write is a runbook's `platform` like opsflow's own: as
an instance, as its fields (how a deployment's picked block arrives), in the UI's picker."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from prefect.blocks.core import Block
from prefect.utilities.callables import parameter_schema
from prefect.utilities.dispatch import get_registry_for_type
from pydantic import SecretStr, ValidationError

from opsflow.blocks import ExecutionBackendBlock, OpsPlatform, SaltAPI
from opsflow.blocks.backend import backend_block_types
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.opsapi.backend import ExecutionBackend


@pytest.fixture(scope="module", autouse=True)
def cmdb_backend() -> Iterator[None]:
    """A user's backend type (another API, other fields), known to Prefect only while this
    module runs: the rest of the session sees the backends it would without it."""
    global CMDBBackend

    class CMDBBackend(ExecutionBackendBlock):
        _block_type_name = "CMDB Backend Unit"
        endpoint: str
        api_key: SecretStr | None = None

        def get_client(self) -> ExecutionBackend:  # pragma: no cover - never called here
            raise NotImplementedError

    yield
    get_registry_for_type(Block).pop("cmdb-backend-unit")


def test_it_is_one_of_the_backend_types_after_opsflows_own() -> None:
    types = backend_block_types()
    assert types[:2] == (OpsPlatform, SaltAPI)
    assert CMDBBackend in types


def test_a_runbook_takes_it_as_an_instance() -> None:
    own = CMDBBackend(endpoint="https://cmdb.example")
    assert RestartPolicy(platform=own, prometheus=None).platform is own


def test_a_runbook_takes_it_as_its_fields_with_or_without_its_type() -> None:
    picked = {"endpoint": "https://cmdb.example", "api_key": None}  # a saved document's data
    assert isinstance(RestartPolicy(platform=picked, prometheus=None).platform, CMDBBackend)
    typed = {**picked, "block_type_slug": "cmdb-backend-unit"}
    assert isinstance(RestartPolicy(platform=typed, prometheus=None).platform, CMDBBackend)
    # opsflow's own still arrive the same way
    salt = {"url": "https://salt:8000", "username": "opsflow"}
    assert isinstance(RestartPolicy(platform=salt, prometheus=None).platform, SaltAPI)


def test_fields_of_no_backend_or_of_another_block_type_are_refused_in_one_line() -> None:
    with pytest.raises(ValidationError, match="fit no block type of Ops Platform, Salt API, "):
        RestartPolicy(platform={"endpoint_url": "x"}, prometheus=None)
    with pytest.raises(ValidationError, match="not a valid Ops Platform block: .*'tokn' — did"):
        RestartPolicy(platform={"url": "x", "tokn": "t"}, prometheus=None)
    with pytest.raises(ValidationError, match="block_type_slug 'prometheus' is not"):
        RestartPolicy(platform={"url": "x", "block_type_slug": "prometheus"}, prometheus=None)


def test_the_ui_offers_it_in_the_platform_picker() -> None:
    schema = parameter_schema(restart_overloaded_hosts).model_dump()
    policy = next(d for name, d in schema["definitions"].items() if name == "RestartPolicy")
    choices = [
        c.get("$ref", "").rsplit("/", 1)[-1] for c in policy["properties"]["platform"]["anyOf"]
    ]
    assert choices[:2] == ["OpsPlatform", "SaltAPI"] and "CMDBBackend" in choices
    assert schema["definitions"]["CMDBBackend"]["block_type_slug"] == "cmdb-backend-unit"


def test_a_runs_stored_parameters_keep_its_fields_with_the_secret_masked() -> None:
    own = CMDBBackend(endpoint="https://cmdb.example", api_key="k-secret-123456")
    policy = RestartPolicy(platform=own, prometheus=None)

    stored = restart_overloaded_hosts.serialize_parameters({"policy": policy})

    assert stored["policy"]["platform"]["endpoint"] == "https://cmdb.example"
    assert "k-secret-123456" not in json.dumps(stored)
