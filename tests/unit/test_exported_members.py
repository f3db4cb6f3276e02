"""The public face of each package: `__all__` says exactly what we mean to export."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from prefect import Task

LAYERS = ("opsflow.opsapi", "opsflow.blocks", "opsflow.tasks")

# What a layer defines but keeps to itself, each with why. Everything else public that a layer
# defines (a class, an exception, a model, a Prefect task) is exported: the expected names are
# derived from the modules, so a new public thing that is not exported fails here.
INTERNAL = {
    # opsapi
    "LenientRetry": "urllib3 Retry as the clients mount it",
    "StrictModel": "the models' shared config",
    "ChatWebhook": "the engine of the chat blocks; users take the blocks",
    # blocks
    "ChatWebhookBlock": "the abstract base of the chat blocks",
    # tasks: the rollout engine's own steps
    "InventoryDiff": "register-hosts' plan",
    "LocksNotCreated": "host locks' own signal, handled inside",
    "HeldLock": "host locks' bookkeeping",
    "recently_acted_on": "the rollout engine's cooldown re-check under the locks",
    "action_history": "the rollout engine's cooldown and repeats read",
    "ActionHistory": "the rollout engine's cooldown and repeats",
    "LedgerUnreadable": "the fleet budget's own signal, handled inside",
    "publish_load_report": "load-report's artifact",
    "ByName": "parameter parsing",
    "plan_rollout": "the rollout engine's plan step",
    "publish_report": "the rollout engine's report step",
    "Summarized": "a typing protocol of the runbooks' results",
    "current_values_of": "the recovery check's read",
}

# Plain functions are exported only when named here: most are a module's own helpers.
PUBLIC_FUNCTIONS = {
    "run_job": "the one job helper: submit, wait, cancel what hangs",
    "from_vault_field": "a backend author's `<secret>_from_vault` field",
    "transport_field": "a backend author's `transport` field",
    "backend_block_types": "every backend block type known, a user's included",
}


def defined_public(package: str) -> set[str]:
    """Every public class and Prefect task defined in a module of `package`."""
    found: set[str] = set()
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("_"):
                continue
            if isinstance(value, Task):
                home = value.fn.__module__
            elif inspect.isclass(value):
                home = value.__module__
            else:
                continue
            if home == module.__name__:
                found.add(name)
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_all_is_every_public_thing_the_layer_defines(package):
    module = importlib.import_module(package)

    expected = defined_public(package) - set(INTERNAL)
    expected |= {name for name in PUBLIC_FUNCTIONS if hasattr(module, name)}
    assert set(module.__all__) == expected
    assert all(hasattr(module, name) for name in module.__all__)


def test_every_internal_name_still_exists():
    defined = set().union(*(defined_public(p) for p in LAYERS))

    assert set(INTERNAL) <= defined


def test_every_client_error_is_in_errors_all_and_shares_one_base():
    from opsflow.opsapi import errors

    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)
    assert all(issubclass(getattr(errors, name), errors.OpsAPIError) for name in defined)


def test_runbook_outcomes_live_above_the_clients_on_the_same_base():
    from opsflow.opsapi import OpsAPIError
    from opsflow.tasks import RunbookAborted

    assert issubclass(RunbookAborted, OpsAPIError)
    assert RunbookAborted.__module__ == "opsflow.tasks.runbook"
