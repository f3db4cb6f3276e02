"""The lab itself: its API contract, auth, persistence, and `up` being harmless twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest
import requests

from opsflow.blocks import OpsPlatform
from opsflow.lab.stack import _alive, _processes, up
from opsflow.opsapi import AuthFailed, ConnectionFailed, OpsPlatformClient, Transport
from tests.conftest import wait_until
from tests.test_api_contract import OPERATIONS as CONTRACT_OPERATIONS


def test_openapi_describes_every_endpoint_of_the_contract(lab):
    spec = requests.get(
        f"{lab.config.platform_url}/openapi.json", verify=str(lab.config.ca_cert), timeout=5
    ).json()

    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert operations == set(CONTRACT_OPERATIONS)


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_platform_accepts_token_and_bearer(lab, scheme):
    client = OpsPlatformClient(
        lab.config.platform_url,
        lab.secrets["platform_token"],
        auth_scheme=scheme,
        transport=Transport(ca_cert=str(lab.config.ca_cert)),
    )

    assert len(client.list_hosts()) >= 1


def test_wrong_token_is_refused_with_the_documented_error_shape(lab):
    client = OpsPlatformClient(
        lab.config.platform_url,
        "not-the-token",
        transport=Transport(ca_cert=str(lab.config.ca_cert)),
    )

    with pytest.raises(AuthFailed) as caught:
        client.list_hosts()

    assert caught.value.status == 401
    assert '"code":"unauthorized"' in caught.value.body
    assert "not-the-token" not in str(caught.value)


def test_platform_certificate_is_refused_without_the_lab_ca(lab):
    client = OpsPlatformClient(
        lab.config.platform_url, lab.secrets["platform_token"], transport=Transport(retries=0)
    )

    with pytest.raises(ConnectionFailed, match="TLS verification of ops platform failed"):
        client.list_hosts()


def test_job_submission_with_the_same_idempotency_key_starts_one_job(fresh_lab):
    client = OpsPlatform.load("lab").get_client()
    host = client.list_hosts()[0]

    first = client.execute_job([host.id], "systemctl restart nginx", idempotency_key="k-1")
    second = client.execute_job([host.id], "systemctl restart nginx", idempotency_key="k-1")
    client.wait_for_job(first, 30, 0.2)

    assert first == second
    assert len(fresh_lab.jobs()) == 1
    assert fresh_lab.admin.restarts() == {host.hostname: 1}


def test_platform_restart_keeps_hosts_and_jobs_and_up_restarts_only_what_stopped(fresh_lab):
    client = OpsPlatform.load("lab").get_client()
    created = client.request(
        "POST", "/api/v1/hosts", json={"hostname": "survivor-01", "ip": "127.10.8.1"}
    )
    job_id = client.execute_job([created["id"]], "echo kept", timeout=10)
    client.wait_for_job(job_id, 30, 0.2)
    before = _processes(fresh_lab.config)
    os.killpg(before["platform"]["pid"], signal.SIGTERM)
    wait_until(lambda: not _alive(before["platform"]), 15, "the platform to stop")

    # The platform's own restart: Salt (if a test started it) is not this test's business, and
    # `up` with Salt would give the new host a minion that outlives this test.
    up(replace(fresh_lab.config, backend="platform"), save_blocks=False)
    fresh_lab.config.save()  # the lab's saved settings as they were (Salt included)

    after = _processes(fresh_lab.config)
    assert after["platform"]["pid"] != before["platform"]["pid"]
    assert {n: after[n]["pid"] for n in ("vault", "prometheus", "alertmanager")} == {
        n: before[n]["pid"] for n in ("vault", "prometheus", "alertmanager")
    }
    assert client.get_host(created["id"]).hostname == "survivor-01"
    assert client.get_job(job_id).result_for(str(created["id"])).stdout == "kept\n"


def test_opsflow_blocks_register_registers_every_block_type(lab):
    from prefect.settings import PREFECT_API_URL

    result = subprocess.run(
        [sys.executable, "-m", "opsflow.flows", "blocks", "register"],
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    slugs = {
        "alertmanager",
        "dingtalk-webhook",
        "feishu-webhook",
        "ops-platform",
        "prometheus",
        "salt-api",
        "vault-connection",
        "vault-secret",
        "wecom-webhook",
    }
    assert {line.split()[-1] for line in result.stdout.splitlines()} == slugs
    api = PREFECT_API_URL.value()
    for slug in slugs:
        assert requests.get(f"{api}/block_types/slug/{slug}", timeout=10).ok, slug
    # the abstract chat base is no block type of its own
    assert requests.get(f"{api}/block_types/slug/chat-webhook-block", timeout=10).status_code == 404


def lab_command(lab, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "opsflow.lab", *args, "--dir", str(lab.config.dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_lab_commands_inject_and_clear_host_faults(fresh_lab):
    assert "load series nan" in lab_command(fresh_lab, "metrics", "lab-web-01", "nan")
    wait_until(
        lambda: str(fresh_lab.prometheus_loads()["lab-web-01"]) == "nan", 20, "Prometheus: NaN"
    )
    lab_command(fresh_lab, "metrics", "lab-web-01", "normal")
    wait_until(lambda: fresh_lab.prometheus_loads()["lab-web-01"] < 2, 20, "a number again")

    assert "restart will hang on lab-db-02" in lab_command(fresh_lab, "hang-restart", "lab-db-02")
    assert "restart will return on lab-db-02" in lab_command(
        fresh_lab, "hang-restart", "lab-db-02", "--undo"
    )
