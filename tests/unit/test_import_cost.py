"""Every process start (a flow run, a worker, a Prefect server loading opsflow's block types, a
command) imports opsflow; pandas and numpy come only when a frame is built."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "numpy")
# what a process imports before it has any data: the runbooks, the command line, the block
# types (Prefect's servers and workers load them through the `prefect.collections` entry point)
ENTRY_MODULES = (
    "opsflow.flows.runbooks.registry",
    "opsflow.flows.cli.main",
    "opsflow.blocks",
    "opsflow.tasks",
    "opsflow.lab",
)


def test_no_entry_module_imports_pandas_or_numpy():
    code = (
        f"import importlib, sys\n"
        f"for name in {ENTRY_MODULES!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_query_still_brings_pandas_when_it_builds_a_frame():
    from opsflow.opsapi.prometheus import _frame

    frame = _frame([({"instance": "10.0.0.1:9100"}, 1764000000, "2.5")])

    assert frame.loc[0, "value"] == 2.5 and str(frame["timestamp"].dt.tz) == "UTC"


def test_a_runbooks_help_and_refused_flags_import_neither_prefect_nor_the_runbook():
    argvs = [
        ["run", "restart-overloaded-hosts", "--help"],
        ["run", "remediate", "--bad"],
        ["run", "restart-overloaded-hosts", "--batch-size", "0"],
        ["run", "restart-overloaded-hosts", "--batch-size", "two"],
        ["run", "restart-overloaded-hosts", "--threshold", "inf"],
        ["run", "remediate", "--side", "up"],
        ["run", "restart-overloaded-hosts", "--service", "Bad!"],
        ["run", "restart-overloaded-hosts", "--query", ""],
        ["run", "load-report", "--warning", "2"],  # above --critical's default, 1
        ["run", "restart-overloaded-hosts", "--threshold", "1.5"],  # --recovery-threshold 2
        ["run", "register-hosts", "--csv-path", "/nonexistent/hosts.csv"],
        ["run", "run-command", "--command", "uptime"],  # no host chosen, no --all-hosts
    ]
    code = (
        "import sys\n"
        "from opsflow.flows.cli.main import app, run_app\n"
        f"for argv in {argvs!r}:\n"
        "    sys.argv = ['opsflow', *argv]\n"
        "    try:\n"
        "        run_app(app, 'opsflow')\n"
        "    except SystemExit as done:\n"
        "        print('exit', done.code, file=sys.stderr)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'"
        " or m.startswith(('opsflow.flows.runbooks.r', 'opsflow.flows.runbooks.l'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert done.stderr.split() == ["exit", "0"] + ["exit", "2"] * 11, done.stderr[-2000:]
    assert "--threshold" in done.stdout
    assert "No such option: --bad" in done.stdout
    assert "invalid --batch-size: Input should be greater than or equal to 1" in done.stdout
    assert "unable to parse string as an integer" in done.stdout
    # ... each in the words the model uses (tests/unit/test_cli_parameters.py compares them)
    assert "invalid --threshold: Input should be a finite number" in done.stdout
    assert "invalid --side: Input should be 'above' or 'below'" in done.stdout
    assert "invalid --service: String should match pattern" in done.stdout
    assert "invalid --query: String should have at least 1 character" in done.stdout
    assert "--warning (2) must not be above --critical (1): lower --warning or raise" in done.stdout
    assert "--recovery-threshold (2) must not be above --threshold (1.5)" in done.stdout
    assert "'/nonexistent/hosts.csv' does not exist: give the path of a CSV file" in done.stdout
    assert "selector is empty: give --tag, --hostname-pattern or --host, or set --all-hosts" in (
        done.stdout
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
