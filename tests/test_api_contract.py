"""Schemathesis against the lab platform's own OpenAPI document, over real HTTPS.

Every operation gets generated valid and invalid requests; each answer must be no 5xx, a status
the document lists, a body in the documented schema, and every error in the one error shape
`{"error": {"code": ..., "message": ...}}`. A scratch platform of its own takes the beating so
the shared lab's hosts stay as the other tests expect them.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from opsflow.lab.stack import LabAdmin, LabConfig, lab_secrets
from opsflow.lab.tls import ensure_certificates
from tests.conftest import free_ports, wait_until

EXAMPLES_PER_OPERATION = 60


@dataclass
class ScratchPlatform:
    config: LabConfig
    token: str

    @property
    def url(self) -> str:
        return self.config.platform_url

    @property
    def ca(self) -> str:
        return str(self.config.ca_cert)


def _answers(url: str, ca: str) -> bool:
    try:
        return requests.get(f"{url}/openapi.json", verify=ca, timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def scratch_platform(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchPlatform]:
    """A second lab platform (same code, own directory and hosts), wired to the lab Prometheus."""
    config = LabConfig(dir=Path(tmp_path_factory.mktemp("scratch")), ports=free_ports(), hosts=5)
    config.save()
    ensure_certificates(config.dir / "tls")
    token = lab_secrets(config)["platform_token"]
    log = (config.dir / "platform.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "opsflow.lab", "serve", "--dir", str(config.dir)]
        + ["--port", str(config.ports.platform)]
        + ["--prometheus-url", lab.config.prometheus_url],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: (
                process.poll() is None
                and _answers(config.platform_url, str(config.ca_cert))
                or process.poll() is not None
            ),
            60,
            "the scratch platform to answer",
        )
        assert process.poll() is None, (config.dir / "platform.log").read_text()[-2000:]
        LabAdmin(config).reset(5)
        yield ScratchPlatform(config, token)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="module")
def platform_schema(scratch_platform: ScratchPlatform) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        f"{scratch_platform.url}/openapi.json", verify=scratch_platform.ca, timeout=10
    )


# The design's API table; test_lab checks the document lists exactly these.
OPERATIONS = [
    ("GET", "/api/v1/hosts"),
    ("POST", "/api/v1/hosts"),
    ("GET", "/api/v1/hosts/{host_id}"),
    ("PUT", "/api/v1/hosts/{host_id}"),
    ("PATCH", "/api/v1/hosts/{host_id}"),
    ("DELETE", "/api/v1/hosts/{host_id}"),
    ("POST", "/api/v1/job/execute"),
    ("GET", "/api/v1/job/{job_id}"),
    ("POST", "/api/v1/job/{job_id}/cancel"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/prometheus/query"),
]


# A job id is any string: no request to those two can break the schema, so no negative mode.
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in GenerationMode
    if not (mode is GenerationMode.NEGATIVE and "{job_id}" in path)
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_answer_is_documented_and_none_is_a_server_error(
    platform_schema, scratch_platform, method, path, mode
):
    operation = platform_schema[path][method]
    answers: Counter[int] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=scratch_platform.url,
            headers={"Authorization": f"Token {scratch_platform.token}"},
            verify=scratch_platform.ca,
            timeout=30,
            # A well-formed request may still name hosts that do not exist: its documented
            # answer is 422 unknown_hosts, which this check would call a rejection.
            excluded_checks=[positive_data_acceptance],
        )
        answers[response.status_code] += 1
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"}, body
            assert isinstance(body["error"]["code"], str) and body["error"]["code"]
            assert isinstance(body["error"]["message"], str) and body["error"]["message"]

    check()

    assert answers, "no request was made"
    assert max(answers) < 500, answers


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/v1/hosts/99999999999999999999", None, 422, "invalid_input"),
        ("DELETE", "/api/v1/hosts/0", None, 422, "invalid_input"),
        ("GET", "/api/v1/jobs?host_id=99999999999999999999", None, 422, "invalid_input"),
        (
            "POST",
            "/api/v1/job/execute",
            {"hosts": [2**64], "command": "true"},
            422,
            "invalid_input",
        ),
        ("POST", "/api/v1/hosts", {"hostname": "a", "ip": "300.1.1.1"}, 422, "invalid_input"),
        ("GET", "/api/v1/prometheus/query?query=(", None, 400, "prometheus_bad_data"),
    ],
)
def test_what_schemathesis_found_stays_fixed(scratch_platform, method, path, body, status, code):
    """Each of these answered 500 or an undocumented shape before schemathesis found it."""
    response = requests.request(
        method,
        f"{scratch_platform.url}{path}",
        json=body,
        headers={"Authorization": f"Token {scratch_platform.token}"},
        verify=scratch_platform.ca,
        timeout=10,
    )

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
