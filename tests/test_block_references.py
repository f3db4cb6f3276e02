"""A deployment's run gets its blocks as references (`{"$ref": {"block_document_id": ...}}`),
resolved in the flow-run process before the runbook starts. An opsflow block is loaded as its
own type without importing every installed Prefect collection (prefect-redis alone costs 0.6 s
of each run's start); a block type opsflow did not ship is still found, through its package's
entry point; a deleted block is still refused in one line.

Each case runs in a fresh interpreter, as a worker's flow-run process is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from opsflow.blocks import OpsPlatform

RESOLVE = """
import json, sys
from opsflow.flows.runbooks.load_report import load_report
try:
    params = load_report.validate_parameters({"params": {"platform": {"$ref": {"block_document_id": sys.argv[1]}}}})
    said = type(params["params"].platform).__name__
except Exception as exc:
    said = f"{type(exc).__name__}: {exc}"
print(json.dumps({"resolved": said, "modules": sorted(m for m in sys.modules if "." not in m)}))
"""


def resolved_in_a_new_process(document_id: object) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE, str(document_id)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_opsflow_block_is_loaded_without_importing_every_installed_collection() -> None:
    pytest.importorskip("prefect_redis")  # the lab extra installs it: the cost to avoid
    document_id = OpsPlatform(url="https://ops.example", token="token-123456").save(
        f"ref-{uuid.uuid4().hex[:8]}"
    )

    seen = resolved_in_a_new_process(document_id)

    assert seen["resolved"] == "OpsPlatform"
    assert "prefect_redis" not in seen["modules"]
    assert "inhouse_backend" not in seen["modules"]


def test_a_block_type_opsflow_did_not_ship_is_found_through_its_package() -> None:
    from inhouse_backend import InHousePlatform

    document_id = InHousePlatform(url="https://inhouse.example", api_key="key-123456").save(
        f"ref-{uuid.uuid4().hex[:8]}"
    )

    seen = resolved_in_a_new_process(document_id)

    assert seen["resolved"] == "InHousePlatform"
    assert "inhouse_backend" in seen["modules"]


def test_a_deleted_block_is_refused_in_one_line_naming_the_field() -> None:
    document_id = OpsPlatform(url="https://ops.example", token="token-123456").save(
        f"ref-{uuid.uuid4().hex[:8]}"
    )
    with get_client(sync_client=True) as client:
        client.delete_block_document(document_id)

    seen = resolved_in_a_new_process(document_id)

    assert seen["resolved"] == (
        f"ParameterTypeError: params.platform: the block it picked (id {document_id}) is not "
        "saved any more: pick a saved block in the run form, or save one and deploy again"
    )
