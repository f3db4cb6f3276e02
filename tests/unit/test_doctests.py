"""Every example in a docstring of the clients either runs or is marked to skip.

(The same as `--doctest-modules` over `opsapi/`, but importing each module under its
installed name, `opsflow.opsapi.*`, rather than as a bare top-level `opsapi`.)
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import opsflow.opsapi

MODULES = sorted(
    f"opsflow.opsapi.{info.name}" for info in pkgutil.iter_modules(opsflow.opsapi.__path__)
) + [
    "opsflow",
    "opsflow.tasks.parameters",
    "opsflow.tasks.runbook",
    "opsflow.tasks.wording",
    "opsflow.tasks.rollout_policy",
    "opsflow.tasks.rollout_plan",
    "opsflow.tasks.rollout_report",
    "opsflow.flows.runbooks.restart_overloaded_hosts",
    "opsflow.blocks.transport",
    "opsflow.blocks.strict",
    "opsflow.blocks.backend",
    "inhouse_backend",
    "opsflow.flows.runbooks.catalog",
    "opsflow.flows.cli.options",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)

    failed, attempted = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )

    assert failed == 0, f"{failed} of {attempted} examples failed in {name}"
