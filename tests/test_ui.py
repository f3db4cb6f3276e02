"""The Prefect UI, as an ops engineer sees it: a real `prefect server start`, `opsflow serve`,
and headless Chromium (Debian's) reading the pages the UI renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import wait_until

DOCS = Path(__file__).parent.parent / "docs"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,1000",
    "--virtual-time-budget=20000",
]


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def chromium(url: str, tmp: Path, screenshot: Path | None = None) -> str:
    """The page's text after the UI rendered it (and a screenshot if asked)."""
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is not installed: run scripts/setup.sh"
    profile = ["--user-data-dir=" + str(tmp / "chromium")]
    if screenshot is not None:
        subprocess.run(
            [binary, *CHROMIUM_FLAGS, *profile, f"--screenshot={screenshot}", url],
            capture_output=True,
            timeout=120,
            check=True,
        )
    dom = subprocess.run(
        [binary, *CHROMIUM_FLAGS, *profile, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_deployment_form_renders_and_a_triggered_run_shows_its_report(
    lab, prefect_server, tmp_path
):
    env = {**os.environ, "PREFECT_API_URL": f"{prefect_server}/api"}
    up = subprocess.run(
        [sys.executable, "-m", "opsflow.lab", "up", "--dir", str(lab.config.dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr  # the lab's blocks, saved in this server
    lab.admin.reset(10)
    lab.overload(8.0, "lab-web-01")
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "opsflow.flows", "serve", "load-report", "--no-schedules"]
            + ["--platform-block", "lab", "--prometheus-block", "lab"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        api = f"{prefect_server}/api"
        deployment = wait_until(
            lambda: (
                (r := requests.get(f"{api}/deployments/name/load-report/load-report", timeout=5)).ok
                and r.json()
            ),
            120,
            "opsflow serve to deploy load-report",
        )

        form = chromium(
            f"{prefect_server}/deployments/deployment/{deployment['id']}/run",
            tmp_path,
            screenshot=tmp_path / "form.png",
        )
        assert "Warn at this load per CPU." in form  # the typed parameter form
        assert "Critical at this load per CPU." in form

        run = requests.post(
            f"{api}/deployments/{deployment['id']}/create_flow_run",
            json={
                "parameters": {
                    "params": {
                        "warning": 0.5,
                        "platform": {"$ref": {"block_document_slug": "ops-platform/lab"}},
                        "prometheus": {"$ref": {"block_document_slug": "prometheus/lab"}},
                    }
                }
            },
            timeout=10,
        ).json()
        final = wait_until(
            lambda: (
                (s := requests.get(f"{api}/flow_runs/{run['id']}", timeout=5).json()["state"])
                and s["type"] in ("COMPLETED", "FAILED", "CRASHED")
                and s
            ),
            180,
            "the run to finish",
        )
        assert final["type"] == "COMPLETED", final

        page = chromium(
            f"{prefect_server}/runs/flow-run/{run['id']}", tmp_path, screenshot=tmp_path / "run.png"
        )
        assert "Completed" in page and "Publish load report" in page
        [table] = requests.post(
            f"{api}/artifacts/filter",
            timeout=5,
            json={
                "artifacts": {
                    "key": {"any_": ["load-report"]},
                    "flow_run_id": {"any_": [run["id"]]},
                },
            },
        ).json()
        artifact = chromium(
            f"{prefect_server}/artifacts/artifact/{table['id']}",
            tmp_path,
            screenshot=tmp_path / "artifact.png",
        )
        assert "lab-web-01" in artifact and "critical" in artifact  # the report table
        for name in ("form.png", "run.png", "artifact.png"):
            assert (tmp_path / name).stat().st_size > 20_000
        if os.environ.get("OPSFLOW_UPDATE_SCREENSHOTS"):
            DOCS.mkdir(exist_ok=True)
            shutil.copy(tmp_path / "form.png", DOCS / "ui-deployment-form.png")
            shutil.copy(tmp_path / "run.png", DOCS / "ui-flow-run.png")
            shutil.copy(tmp_path / "artifact.png", DOCS / "ui-load-report-artifact.png")
    finally:
        serve.terminate()
        serve.wait(30)
        time.sleep(0.5)


def test_prefect_yaml_deploys_every_runbook_with_its_schedule(prefect_server, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": f"{prefect_server}/api"}
    env.pop("OPSFLOW_HOME", None)  # the entrypoints name the installed package: no checkout needed
    root = Path(__file__).parent.parent
    pool = subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", "opsflow", "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pool.returncode == 0 or "already exists" in pool.stdout + pool.stderr, pool.stderr

    deploy = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]
    api = f"{prefect_server}/api"
    crons = {}
    for flow_name, name in [
        ("restart-overloaded-hosts", "restart-overloaded-hosts"),
        ("load-report", "load-report"),
        ("disk-cleanup", "disk-cleanup"),
        ("register-hosts", "register-hosts"),
        ("run-command", "run-command"),
    ]:
        found = requests.get(f"{api}/deployments/name/{flow_name}/{name}", timeout=5).json()
        crons[name] = [s["schedule"]["cron"] for s in found["schedules"]]
        assert found["work_pool_name"] == "opsflow"
        assert found["parameter_openapi_schema"]["properties"]  # typed parameters for the form
    assert crons == {
        "restart-overloaded-hosts": ["*/10 * * * *"],
        "load-report": ["0 * * * *"],
        "disk-cleanup": ["30 3 * * *"],
        "register-hosts": [],
        "run-command": [],
    }
