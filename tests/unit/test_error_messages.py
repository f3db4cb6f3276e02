"""Errors say what failed where, survive pickling (Prefect pickles them), hold no secret."""

from __future__ import annotations

import pickle

import pytest

from opsflow.opsapi import (
    AuthFailed,
    ConfigurationError,
    ConnectionFailed,
    OpsAPIError,
    RequestFailed,
    ServerError,
    VaultRefused,
)
from opsflow.tasks import RunbookAborted
from opsflow.tasks.retrying import TRANSIENT


def test_a_request_error_names_status_method_and_url():
    error = AuthFailed("refused", "GET", "https://ops/api/v1/hosts", 401, "{}")

    assert str(error) == "refused (401 on GET https://ops/api/v1/hosts)"


@pytest.mark.parametrize(
    "error",
    [
        ServerError("down", "GET", "https://ops/x", 503, "body"),
        VaultRefused("denied", "GET", "https://vault/v1/secret/data/x", 403),
        ConfigurationError("threshold must be positive"),
        RunbookAborted("no data"),
    ],
)
def test_errors_survive_pickling_unchanged(error):
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error) and str(copy) == str(error)


def test_vault_errors_are_request_errors_and_its_outages_are_transient():
    assert issubclass(VaultRefused, RequestFailed)
    assert not issubclass(VaultRefused, TRANSIENT)  # a refusal is never retried
    assert issubclass(ConnectionFailed, TRANSIENT) and issubclass(ServerError, TRANSIENT)


def test_our_vault_error_does_not_shadow_hvacs():
    import hvac.exceptions

    import opsflow.opsapi as api

    assert not hasattr(api, "VaultError")
    assert hvac.exceptions.VaultError is not VaultRefused


def test_configuration_errors_are_value_errors_too():
    assert issubclass(ConfigurationError, ValueError) and issubclass(
        ConfigurationError, OpsAPIError
    )
