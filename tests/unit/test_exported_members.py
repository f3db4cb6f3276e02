"""The public face of each package: `__all__` says exactly what we mean to export."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "opsflow.opsapi": {
        "AlertmanagerClient",
        "AppRoleAuth",
        "AuditLog",
        "AuthFailed",
        "BadResponse",
        "CommandNotAllowed",
        "ConfigurationError",
        "Conflict",
        "ConnectionFailed",
        "Host",
        "HostSelector",
        "HostSpec",
        "InvalidHostRows",
        "InvalidInput",
        "Job",
        "JobResult",
        "JobStatus",
        "JobTimedOut",
        "NotFound",
        "NotificationFailed",
        "OpsAPIError",
        "OpsPlatformClient",
        "PrometheusClient",
        "RateLimited",
        "RequestFailed",
        "RequestTimedOut",
        "ServerError",
        "TokenAuth",
        "Transport",
        "UserpassAuth",
        "VaultClient",
        "VaultRefused",
    },
    "opsflow.blocks": {
        "Alertmanager",
        "DingTalkWebhook",
        "FeishuWebhook",
        "OpsPlatform",
        "Prometheus",
        "SaltAPI",
        "VaultConnection",
        "VaultSecret",
        "WeComWebhook",
    },
    "opsflow.tasks": {
        "RunbookAborted",
        "cancel_job",
        "create_host",
        "delete_host",
        "execute_job",
        "get_host",
        "get_job",
        "list_hosts",
        "query_instant",
        "query_metric",
        "query_range",
        "replace_host",
        "run_job",
        "update_host",
        "wait_for_job",
        "wait_for_recovery",
    },
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_is_what_we_mean_to_export(package):
    module = importlib.import_module(package)

    assert set(module.__all__) == PUBLIC[package]
    assert all(hasattr(module, name) for name in module.__all__)


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
