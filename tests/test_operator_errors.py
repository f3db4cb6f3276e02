"""What a tired operator sees for every expected mistake: one line that names the flag and the
fix, the right exit code, no traceback, and nothing done.

Input that can be checked without a server is checked before one is asked: these runs get a
PREFECT_API_URL that nothing listens on, so any attempt to reach it would fail differently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL

from opsflow.blocks import OpsPlatform, Prometheus
from opsflow.flows.services.deployments import deployments
from opsflow.flows.services.local_server import LocalServer
from opsflow.opsapi import Transport
from opsflow.tasks.parameters import PLATFORM_TYPES, kinds
from tests.cli_in_process import opsflow_in_process

NOWHERE = "http://127.0.0.1:9/api"
EMPTY_CSV = "empty.csv"
BAD_CSV = "bad.csv"
EXTRA_CSV = "extra.csv"


def opsflow(*args: str, api: str | None = NOWHERE, cwd: Path | None = None, timeout: float = 120):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if api:
        env["PREFECT_API_URL"] = api
    return subprocess.run(
        [sys.executable, "-m", "opsflow.flows", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    (root / EMPTY_CSV).write_text("")
    (root / BAD_CSV).write_text("hostname,ip\nok-01,127.10.6.1\nbad_name!,127.10.6.2\n")
    (root / EXTRA_CSV).write_text("hostname,ip,rack\nok-01,127.10.6.1,r1\n")
    return root


RESTART = ("run", "restart-overloaded-hosts")
REGISTER = ("run", "register-hosts")
COMMAND = ("run", "run-command")

# (argv, what the one line must say); every one exits 2, before any server is asked.
REFUSED_UP_FRONT = [
    (
        RESTART + ("--batch-size", "0"),
        "invalid --batch-size: Input should be greater than or equal to 1",
    ),
    (RESTART + ("--threshold", "abc"), "Invalid value for '--threshold'"),
    (RESTART + ("--dryrun",), "No such option: --dryrun (Possible options: --dry-run)"),
    (RESTART + ("--tag",), "Option '--tag' requires an argument"),
    (
        RESTART + ("--threshold", "2", "--recovery-threshold", "3"),
        "--recovery-threshold (3) must not be above --threshold (2): lower --recovery-threshold or raise --threshold",
    ),
    (RESTART + ("--service", "nginx; reboot"), "invalid --service: String should match pattern"),
    (RESTART + ("--max-hosts", "0"), "invalid --max-hosts"),
    (
        RESTART + ("--notify-block", "wecom"),
        "invalid --notify-block: 'wecom' is not '<block-type-slug>/<name>'",
    ),
    (
        ("run", "load-report", "--warning", "2", "--critical", "1"),
        "--warning (2) must not be above --critical (1)",
    ),
    (("run", "disk-cleanup", "--threshold-percent", "150"), "invalid --threshold-percent"),
    (
        ("run", "disk-cleanup", "--threshold-percent", "80", "--target-percent", "85"),
        "--target-percent (85) must not be above --threshold-percent (80)",
    ),
    (REGISTER, "give exactly one of --csv-path or --rows"),
    (
        REGISTER + ("--csv-path", "/nonexistent.csv"),
        "invalid --csv-path: '/nonexistent.csv' does not exist",
    ),
    (REGISTER + ("--csv-path", "/tmp"), "invalid --csv-path: '/tmp' is a directory"),
    (
        REGISTER + ("--csv-path", "{files}/" + EMPTY_CSV),
        "is empty: its first line must be the header",
    ),
    (
        REGISTER + ("--csv-path", "{files}/" + BAD_CSV),
        "row 3: hostname: 'bad_name!' is not a host name",
    ),
    (REGISTER + ("--csv-path", "{files}/" + EXTRA_CSV), "unknown column(s) ['rack']"),
    (REGISTER + ("--rows", "not json"), "--rows must be JSON"),
    (
        REGISTER + ("--rows", '[{"hostname": "a-01", "ip": "10.0.0.999"}]'),
        "row 1: ip: '10.0.0.999' is not an IPv4 or IPv6 address",
    ),
    (
        REGISTER + ("--rows", "[]", "--csv-path", "{files}/" + BAD_CSV),
        "give exactly one of --csv-path or --rows",
    ),
    (COMMAND, "Missing option '--command'"),
    (
        COMMAND + ("--command", "uptime"),
        "selector is empty: give --tag, --hostname-pattern or --host, or set --all-hosts",
    ),
    (
        COMMAND + ("--command", "uptime", "--all-hosts", "--allowlist", "(up"),
        "invalid --allowlist: allowlist pattern '(up' is not a valid regular expression",
    ),
    (
        COMMAND + ("--command", "uptime; reboot", "--all-hosts", "--allowlist", "uptime"),
        "--command 'uptime; reboot' uses shell syntax ';', which an allowlist forbids",
    ),
    (
        COMMAND + ("--command", "reboot", "--tag", "web", "--allowlist", "uptime"),
        "--command 'reboot' matches no allowlist pattern",
    ),
    (("run", "restart-overloaded-host"), "No such command 'restart-overloaded-host'"),
    (("blocks", "frobnicate"), "unknown action 'frobnicate': the only one is 'register'"),
]


@pytest.mark.parametrize(
    ("argv", "says"), REFUSED_UP_FRONT, ids=lambda v: " ".join(v) if isinstance(v, tuple) else None
)
def test_bad_input_is_one_line_naming_the_flag_and_exits_2_before_any_server(files, argv, says):
    done = opsflow_in_process(*(a.replace("{files}", str(files)) for a in argv), api=NOWHERE)

    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert says in output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output


def test_bad_input_in_a_real_process_is_one_line_too(files):
    """The process as the operator starts it: nothing else on its stdout or stderr (no import
    warning, no Prefect banner), exit code 2."""
    done = opsflow("run", "register-hosts", "--csv-path", f"{files}/{BAD_CSV}")

    assert done.returncode == 2
    [line] = done.stdout.strip().splitlines()
    assert line.startswith("register-hosts: row 3: hostname: 'bad_name!' is not a host name")
    assert line.endswith("nothing was registered")
    assert done.stderr == ""


def test_serve_without_a_server_refuses_and_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))  # opsflow's local server is not running

    done = opsflow_in_process("serve", api=None)

    assert done.returncode == 2
    assert "opsflow serve needs a Prefect server" in done.stdout
    assert "start opsflow's local one (opsflow server start)" in done.stdout
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api opsflow serve" in done.stdout


def test_approval_with_nobody_to_answer_is_refused_before_anything_runs(
    fresh_lab, monkeypatch, tmp_path
):
    fresh_lab.overload(8.0, "lab-web-01")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))  # a local server of its own, stopped after

    try:
        done = opsflow(*RESTART, "--approval", "--platform-block", "lab", api=None)
    finally:
        LocalServer().stop()

    assert done.returncode == 2
    assert "--approval needs someone to answer and there is no terminal here" in done.stdout
    assert "and approve in its UI" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert fresh_lab.jobs() == []


@pytest.fixture
def api(lab) -> str:
    """The suite's Prefect API, which holds the lab's blocks."""
    return PREFECT_API_URL.value()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            RESTART + ("--platform-block", "nope"),
            "--platform-block: no {backends} block named 'nope' is saved",
        ),
        (
            RESTART + ("--platform-block", "lba"),
            "--platform-block: no {backends} block named 'lba' is saved; did you mean 'lab'? "
            "(saved: ",
        ),
        (
            RESTART + ("--platform-block", "lab", "--prometheus-block", "labb"),
            "--prometheus-block: no Prometheus block named 'labb' is saved; did you mean 'lab'?",
        ),
        (
            RESTART + ("--platform-block", "prometheus/lab"),
            "--platform-block: 'prometheus/lab' is a Prometheus block; expected: {backends}",
        ),
        (
            RESTART + ("--platform-block", "lab", "--prometheus-block", "nope"),
            "--prometheus-block: no Prometheus block named 'nope'",
        ),
        (
            RESTART
            + (
                "--platform-block",
                "lab",
                "--prometheus-block",
                "lab",
                "--notify-block",
                "wecom-webhook/nope",
            ),
            "--notify-block: no block 'wecom-webhook/nope' is saved",
        ),
        (
            ("run", "load-report", "--prometheus-block", "lab"),
            "--platform-block: no {backends} block named 'default' is saved",
        ),
    ],
)
def test_a_missing_block_is_refused_naming_its_flag(api, argv, says):
    done = opsflow_in_process(*argv, api=api)

    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    # {backends}: every backend type installed, e.g. "Ops Platform, Salt API or In-House Platform"
    assert says.format(backends=kinds(PLATFORM_TYPES)) in output and "Traceback" not in output
    assert len(output.splitlines()) == 1, output


@pytest.fixture
def down_blocks(api) -> None:
    """Blocks pointing at servers that are not running."""
    OpsPlatform(
        url="https://127.0.0.1:9", token="not-used-0123", transport=Transport(retries=0)
    ).save("platform-down", overwrite=True)
    Prometheus(url="http://127.0.0.1:9", transport=Transport(retries=0)).save(
        "prometheus-down", overwrite=True
    )


def test_a_platform_that_is_down_fails_the_run_in_one_line(fresh_lab, api, down_blocks):
    down = opsflow(
        *RESTART, "--platform-block", "platform-down", "--prometheus-block", "lab", api=api
    )
    blind = opsflow(
        *RESTART, "--platform-block", "lab", "--prometheus-block", "prometheus-down", api=api
    )

    for done, says in (
        (down, "restart-overloaded-hosts failed: cannot connect to ops platform"),
        (blind, "restart-overloaded-hosts failed: no usable load data, so nothing was done"),
    ):
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert says in output
        assert "Traceback" not in output
    assert fresh_lab.jobs() == []


def test_verbose_shows_the_traceback_for_a_bug_report(fresh_lab, api, down_blocks):
    done = opsflow(
        "--verbose",
        *RESTART,
        "--platform-block",
        "lab",
        "--prometheus-block",
        "prometheus-down",
        api=api,
    )

    assert done.returncode == 1
    assert "Traceback" in done.stdout + done.stderr


LAB_MISTAKES = [
    (("overload", "lab-web-01", "nope"), "unknown lab host(s): nope; nothing was changed"),
    (("overload", "lab-web-01", "--load", "-1"), "Invalid value for '--load'"),
    (("metrics", "lab-web-01", "weird"), "Invalid value for 'fault'"),
    (("fill-disk", "lab-web-01", "--gigabytes", "0"), "Invalid value for '--gigabytes'"),
    (("reset", "--hosts", "0"), "Invalid value for '--hosts'"),
    (("fail-restart", "nope"), "unknown lab host(s): nope"),
]


@pytest.mark.parametrize(
    ("argv", "says"), LAB_MISTAKES, ids=lambda v: " ".join(v) if isinstance(v, tuple) else None
)
def test_lab_admin_mistakes_change_nothing_and_say_so_in_one_line(fresh_lab, argv, says):
    done = opsflow_in_process(
        *argv, "--dir", str(fresh_lab.config.dir), api=None, program="opsflow lab"
    )

    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    # {backends}: every backend type installed, e.g. "Ops Platform, Salt API or In-House Platform"
    assert says.format(backends=kinds(PLATFORM_TYPES)) in output and "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    web01 = next(h for h in fresh_lab.admin.hosts() if h["hostname"] == "lab-web-01")
    assert web01["load"] < 2 and not web01["fail_restart"]  # the good name was left alone too


def test_the_lab_missing_is_one_line(tmp_path):
    done = opsflow_in_process(
        "hosts", "--dir", str(tmp_path / "none"), api=None, program="opsflow lab"
    )

    assert done.returncode == 2
    assert (
        done.stdout.strip()
        == f"opsflow lab: no lab in {tmp_path / 'none'}: start one with 'opsflow lab up'"
    )


BAD_DEPLOYMENT_PARAMETERS = [
    (
        {"policy": {"threshold": 2, "recovery_threshold": 3}},
        "policy: recovery_threshold (3) must not be above threshold (2): lower "
        "recovery_threshold or raise threshold",
    ),
    (
        {"policy": {"platform": {"$ref": {"block_document_id": str(uuid.UUID(int=7))}}}},
        f"policy.platform: the block it picked (id {uuid.UUID(int=7)}) is not saved any more: "
        "pick a saved block in the run form, or save one and deploy again",
    ),
]


@pytest.mark.parametrize(("parameters", "says"), BAD_DEPLOYMENT_PARAMETERS)
def test_a_deployment_run_refused_its_parameters_names_the_field_in_one_line(api, parameters, says):
    """As a worker runs it (`python -m prefect.engine`): the run fails naming the field, and
    neither its logs nor the worker's output hold a traceback or pydantic's dump."""
    [made] = deployments(["restart-overloaded-hosts"], schedules=False, restart_on_alert=None)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(made.apply(), parameters=parameters)
    done = subprocess.run(
        [sys.executable, "-m", "prefect.engine", str(run.id)],
        env={**os.environ, "PREFECT_API_URL": api},
        capture_output=True,
        text=True,
        timeout=120,
    )
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
        logs = [log.message for log in client.read_logs(LogFilter(flow_run_id={"any_": [run.id]}))]

    assert state.type == StateType.FAILED
    assert state.message.endswith(f"ParameterTypeError: {says}"), state.message
    output = done.stdout + done.stderr
    for text in [output, *logs]:
        assert "Traceback" not in text and "'type': 'value_error'" not in text, text
    assert len(output.strip().splitlines()) <= 6, output
