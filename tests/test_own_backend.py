"""A backend opsflow did not write, from the command line: the example package's block type
(examples/inhouse_backend, installed with its own `prefect.collections` entry point) is taken
by its slug and by its bare name, and a runbook that needs what it lacks says so in one line.
A deployment run by a worker takes it too. (The runbooks' guarantees on it, from Python, are in
tests/test_backends.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from fastapi.testclient import TestClient
from inhouse_backend import InHousePlatform
from prefect.settings import PREFECT_API_URL

from opsflow.blocks import backend_block_types
from opsflow.flows.services.alert_receiver import receiver_app
from opsflow.tasks.parameters import PLATFORM_TYPES, load_block
from tests import inhouse
from tests.cli_in_process import opsflow_in_process
from tests.conftest import Lab
from tests.inhouse import inhouse_api
from tests.prefect_lab import finished_runs, lab_server, prefect_lab, restart_runs, start_restart

__all__ = ["inhouse_api", "prefect_lab"]  # the module's fixtures

FAST = ("--batch-size", "1", "--poll-seconds", "0.5", "--verify-window-seconds", "30")


def test_the_installed_package_makes_its_block_type_a_backend():
    slugs = [t.get_block_type_slug() for t in backend_block_types()]
    assert slugs[:2] == ["ops-platform", "salt-api"] and "in-house-platform" in slugs


def test_opsflow_run_restarts_through_it_by_slug_and_by_bare_name(fresh_lab: Lab, inhouse_api):
    for given, host in ((inhouse.BLOCK, "lab-web-03"), ("inhouse", "lab-db-04")):
        fresh_lab.overload(8.0, host)

        done = opsflow_in_process(
            *("run", "restart-overloaded-hosts", "--platform-block", given),
            *("--prometheus-block", "lab", *FAST),
            api=PREFECT_API_URL.value(),
        )

        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{host}" in done.stdout and "verified" in done.stdout
    assert fresh_lab.admin.restarts() == {"lab-web-03": 1, "lab-db-04": 1}


def test_register_hosts_refuses_a_backend_without_registration_in_one_line(
    fresh_lab: Lab, inhouse_api
):
    rows = [{"hostname": "web-new-01", "ip": "10.9.0.1", "tags": "web"}]
    done = opsflow_in_process(
        *("run", "register-hosts", "--platform-block", inhouse.BLOCK),
        *("--rows", json.dumps(rows)),
        api=PREFECT_API_URL.value(),
    )

    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and "Traceback" not in output
    assert (
        "the In-House Platform backend cannot register hosts (its client has no "
        "create_host/replace_host): register them in that system itself"
    ) in output
    assert "web-new-01" not in {h["hostname"] for h in fresh_lab.admin.hosts()}


PICKER = """
from opsflow.flows.services.deployments import deployments
[made] = deployments(["restart-overloaded-hosts"], schedules=False, restart_on_alert=None)
schema = made._parameter_openapi_schema.model_dump()
choices = schema["definitions"]["RestartPolicy"]["properties"]["platform"]["anyOf"]
print([schema["definitions"][c["$ref"].rsplit("/", 1)[1]]["block_type_slug"] for c in choices if "$ref" in c])
"""


def test_a_deployment_made_in_a_fresh_process_offers_it_in_the_ui_platform_picker():
    # A fresh interpreter that never imported the package: the entry point brings it in.
    done = subprocess.run(
        [sys.executable, "-c", PICKER], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == str(["ops-platform", "salt-api", "in-house-platform"])


def test_a_deployment_run_by_a_worker_restarts_through_the_picked_block(
    prefect_lab: Lab, inhouse_api: str
):
    # Saved in the topology's server; picked as the UI's Platform picker stores it.
    with lab_server(prefect_lab):
        saved = InHousePlatform(url=inhouse_api, api_key=inhouse.API_KEY).save(
            "inhouse", overwrite=True
        )
    prefect_lab.overload(8.0, "lab-web-05")
    known = {r.id for r in restart_runs(prefect_lab)}

    run = start_restart(
        prefect_lab, ["lab-web-05"], platform={"$ref": {"block_document_id": str(saved)}}
    )

    [ended] = finished_runs(prefect_lab, known, 1)
    assert ended.id == run.id and ended.state.is_completed(), ended.state.message
    assert prefect_lab.admin.restarts() == {"lab-web-05": 1}


def test_the_alert_receiver_matches_alerts_on_its_inventory(fresh_lab: Lab, inhouse_api: str):
    # What `opsflow alerts serve --platform-block in-house-platform/inhouse` serves.
    app = receiver_app(load_block(inhouse.BLOCK, PLATFORM_TYPES), token="t-0123456789")
    ip = fresh_lab.admin.host("lab-web-07")["ip"]
    body = {
        "version": "4",
        "groupKey": f"{{}}:{{test={uuid.uuid4().hex!r}}}",
        "status": "firing",
        "receiver": "opsflow",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HostOverloaded", "instance": f"{ip}:9100"},
                "annotations": {},
                "startsAt": "2026-12-04T05:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }
    with TestClient(app) as client:
        answer = client.post("/alerts", json=body, headers={"Authorization": "Bearer t-0123456789"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["firing"] == {"HostOverloaded": ["lab-web-07"]}
