"""Plain Python clients for ops platforms, Prometheus, Alertmanager and Vault (no Prefect)."""

from opsflow.opsapi.alertmanager import AlertmanagerClient, WebhookAlert, WebhookMessage
from opsflow.opsapi.audit import AuditLog
from opsflow.opsapi.backend import ExecutionBackend, FollowsJobs, RegistersHosts
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
    UnknownHosts,
    VaultRefused,
)
from opsflow.opsapi.http import JSONClient
from opsflow.opsapi.models import Host, HostSelector, HostSpec, Job, JobResult, JobStatus
from opsflow.opsapi.platform import OpsPlatformClient
from opsflow.opsapi.prometheus import PrometheusClient, Sample
from opsflow.opsapi.salt import SaltAPIClient
from opsflow.opsapi.transport import Transport
from opsflow.opsapi.vault import AppRoleAuth, JWTAuth, TokenAuth, UserpassAuth, VaultClient

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
    "ExecutionBackend",
    "FollowsJobs",
    "Host",
    "HostSelector",
    "HostSpec",
    "InvalidHostRows",
    "InvalidInput",
    "JWTAuth",
    "Job",
    "JobResult",
    "JobStatus",
    "JSONClient",
    "JobTimedOut",
    "NotFound",
    "NotificationFailed",
    "OpsAPIError",
    "OpsPlatformClient",
    "PrometheusClient",
    "RateLimited",
    "RequestFailed",
    "RegistersHosts",
    "RequestTimedOut",
    "SaltAPIClient",
    "Sample",
    "ServerError",
    "TokenAuth",
    "Transport",
    "UnknownHosts",
    "UserpassAuth",
    "VaultClient",
    "VaultRefused",
    "WebhookAlert",
    "WebhookMessage",
]
