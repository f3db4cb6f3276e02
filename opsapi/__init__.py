"""Plain Python clients for ops platforms, Prometheus, Alertmanager and Vault (no Prefect)."""

from opsflow.opsapi.alertmanager import AlertmanagerClient
from opsflow.opsapi.audit import AuditLog
from opsflow.opsapi.errors import (
    AuthFailed,
    BadResponse,
    CommandNotAllowed,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    InvalidHostRows,
    InvalidInput,
    JobTimedOut,
    NotFound,
    NotificationFailed,
    OpsAPIError,
    RateLimited,
    RequestFailed,
    RequestTimedOut,
    ServerError,
    VaultRefused,
)
from opsflow.opsapi.models import Host, HostSelector, HostSpec, Job, JobResult, JobStatus
from opsflow.opsapi.platform import OpsPlatformClient
from opsflow.opsapi.prometheus import PrometheusClient
from opsflow.opsapi.transport import Transport
from opsflow.opsapi.vault import AppRoleAuth, TokenAuth, UserpassAuth, VaultClient

__all__ = [
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
]
