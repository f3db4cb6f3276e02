"""opsflow as a user installs it: the wheel, in a clean virtual environment, inside a Prefect
project that has its own `flows/`, `tasks/` and `lab/` folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERIC = ("tasks", "flows", "blocks", "opsapi", "lab")
# pip builds the wheel, uv installs it with Prefect into a new environment; the first imports
# there compile Prefect's modules: a minute or two of CPU.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a clean copy of the sources (a `build/` left in the checkout by
    an earlier build could smuggle deleted modules into it)."""
    out = tmp_path_factory.mktemp("dist")
    with tempfile.TemporaryDirectory() as scratch:  # gone after the build: it is only a copy
        source = Path(scratch) / "opsflow"
        shutil.copytree(
            ROOT,
            source,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv",
                "build",
                "*.egg-info",
                "__pycache__",
                ".pytest_cache",
                ".ruff_cache",
            ),
        )
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [path] = out.glob("opsflow-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment with only the wheel (and its lab extra) installed: uv
    resolves the wheel's declared dependencies as pip would (a dependency opsflow forgot to
    declare is missing here too), in seconds where pip takes a minute of CPU."""
    home = tmp_path_factory.mktemp("venv")
    uv = str(Path(sys.executable).parent / "uv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([uv, "venv", "-q", "--python", base, str(home)], check=True, timeout=120)
    installed = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(home / "bin" / "python"), f"{wheel}[lab]"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    return home


USER_FILES = {
    "tasks/__init__.py": "",
    "tasks/hosts.py": 'list_hosts = "the user\'s own list_hosts"\n',
    "flows/__init__.py": "",
    "flows/nightly.py": textwrap.dedent(
        """
        from prefect import flow

        from tasks.hosts import list_hosts


        @flow(name="users-nightly")
        def nightly() -> str:
            return list_hosts
        """
    ),
    "lab/__init__.py": "",
    "lab/__main__.py": 'raise SystemExit("the user\'s lab ran")\n',
    "blocks/__init__.py": "MINE = True\n",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect project of the user's, with folders named like ours."""
    root = tmp_path_factory.mktemp("user-project")
    for name, text in USER_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def run_in(venv: Path, project: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["PREFECT_HOME"] = str(project / ".prefect")
    return subprocess.run(
        list(argv), cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_wheel_installs_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}

    assert {t for t in top if not t.endswith(".dist-info")} == {"opsflow"}
    assert "opsflow/py.typed" in names and "opsflow/lab/bin/systemctl" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[prefect.collections]\nopsflow = opsflow.blocks" in text


def test_the_users_modules_stay_the_users_and_prefect_loads_the_users_flow(venv, project):
    done = run_in(
        venv,
        project,
        str(venv / "bin" / "python"),
        "-c",
        textwrap.dedent(
            """
            import opsflow.flows.runbooks.registry, opsflow.tasks.hosts, opsflow.blocks
            from tasks.hosts import list_hosts
            import blocks
            from prefect.flows import load_flow_from_entrypoint
            flow = load_flow_from_entrypoint("flows/nightly.py:nightly")
            print(list_hosts, blocks.MINE, flow.name, sep="|")
            """
        ),
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "the user's own list_hosts|True|users-nightly"


def test_every_opsflow_module_imports_without_bringing_a_bare_name(venv, project):
    done = run_in(
        venv,
        project,
        str(venv / "bin" / "python"),
        "-c",
        textwrap.dedent(
            """
            import importlib, pkgutil, sys
            import opsflow
            names = ["opsflow"] + [
                m.name for m in pkgutil.walk_packages(opsflow.__path__, "opsflow.")
                if not m.name.endswith("__main__")
            ]
            for name in names:
                importlib.import_module(name)
            bare = sorted(m for m in sys.modules if m.split(".")[0] in GENERIC)
            print(len(names), opsflow.__version__, bare)
            """
        ).replace("GENERIC", repr(GENERIC)),
    )

    assert done.returncode == 0, done.stderr[-3000:]
    count, version, bare = done.stdout.split(maxsplit=2)
    assert int(count) >= 40 and version.count(".") >= 1
    assert bare.strip() == "[]"


def test_the_command_line_is_ours_not_the_users_lab(venv, project):
    opsflow = str(venv / "bin" / "opsflow")

    help_ = run_in(venv, project, opsflow, "--help")
    lab = run_in(venv, project, opsflow, "lab", "--help")
    version = run_in(venv, project, opsflow, "--version")
    run_help = run_in(venv, project, opsflow, "run", "remediate", "--help")  # the specs shipped

    assert help_.returncode == 0 and "runbooks" in help_.stdout, help_.stderr[-2000:]
    assert lab.returncode == 0, lab.stdout + lab.stderr
    assert "overload" in lab.stdout and "the user's lab ran" not in lab.stdout + lab.stderr
    assert version.stdout.startswith("opsflow ")
    assert run_help.returncode == 0 and "--no-dry-run" in run_help.stdout, run_help.stderr[-2000:]
