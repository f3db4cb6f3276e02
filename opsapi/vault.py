"""Vault (or OpenBao) through hvac: log in by method, read KV v1/v2 secrets, re-login on 403.

hvac's own exceptions become opsflow's: a refused login, a denied read or a missing secret is
`VaultRefused`, naming the path or the auth method and what to check; an unreachable, slow or
sealed Vault is `ConnectionFailed`, `RequestTimedOut` or `ServerError`, the same transport
errors as every other server's. Nothing of hvac's internals or any credential reaches a message.

Example:
    >>> vault = VaultClient("https://127.0.0.1:8200", AppRoleAuth(role_id="...", secret_id="..."),
    ...                     transport=Transport(ca_cert="vault-ca.pem"))  # doctest: +SKIP
    >>> vault.read_secret("opsflow/platform")["token"]            # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hvac
import requests
from hvac import exceptions as hvac_errors

from opsflow.opsapi.errors import (
    ConfigurationError,
    ConnectionFailed,
    OpsAPIError,
    RequestFailed,
    RequestTimedOut,
    ServerError,
    VaultRefused,
)
from opsflow.opsapi.http import IDEMPOTENT_METHODS, is_timeout, make_session, mount_retries
from opsflow.opsapi.redaction import mask_secrets, register_secret
from opsflow.opsapi.transport import Transport


@dataclass(frozen=True)
class TokenAuth:
    """Use a token as it is."""

    token: str = field(repr=False)
    method: str = "token"


@dataclass(frozen=True)
class AppRoleAuth:
    """Log in with an AppRole role id and secret id."""

    role_id: str
    secret_id: str = field(repr=False)
    mount_point: str = "approle"
    method: str = "approle"


@dataclass(frozen=True)
class UserpassAuth:
    """Log in with a username and password."""

    username: str
    password: str = field(repr=False)
    mount_point: str = "userpass"
    method: str = "userpass"


@dataclass(frozen=True)
class JWTAuth:
    """Log in with a JWT (a Kubernetes service-account token, a CI OIDC token) for a role of
    Vault's `jwt` method. `read_jwt` is called at every login: projected tokens rotate."""

    role: str
    read_jwt: Callable[[], str] = field(repr=False)
    mount_point: str = "jwt"
    method: str = "jwt"


VaultAuth = TokenAuth | AppRoleAuth | UserpassAuth | JWTAuth


class VaultClient:
    """A logged-in Vault client that reads secrets and logs in again when its token is refused.

    Args:
        url: Vault's address.
        auth: how to log in.
        namespace: Vault Enterprise / OpenBao namespace, if any.
        transport: timeout, TLS, retries (of reads), pool and proxy.
    """

    def __init__(
        self,
        url: str,
        auth: VaultAuth,
        namespace: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        transport = transport or Transport(timeout=10)
        register_secret(
            getattr(auth, "token", None)
            or getattr(auth, "secret_id", None)
            or getattr(auth, "password", None)
        )
        self.url = url.rstrip("/")
        self.auth = auth
        verify = transport.verify
        session = make_session(transport, audit=False)
        # Logins and renewals are POSTs: retried only where Vault cannot have acted on them
        # (no connection; 503 sealed, standby or unsealing; 429), never after a read timeout
        # (a login that went through would spend a limited-use secret id twice) and never on a
        # refusal (400/403).
        mount_retries(
            session,
            f"{self.url}/v1/auth/",
            transport,
            IDEMPOTENT_METHODS | {"POST"},
            statuses=(429, 503),
            after_sending=False,
        )
        self._hvac = hvac.Client(
            url=self.url,
            verify=verify,
            namespace=namespace,
            timeout=transport.timeout,
            session=session,
        )
        self._hvac.token = None
        self._lock = threading.Lock()
        self.logins = 0
        self.renewals = 0
        self._ttl = self._full_ttl = 0.0
        self._renewable = False
        self._expires_at: float | None = None

    def login(self) -> None:
        """Log in with the configured method (for a token: check that it is valid)."""
        with self._lock:
            self._login()

    def _login(self) -> None:
        auth = self.auth
        where = f"{auth.method} auth at {self.url}"
        try:
            if isinstance(auth, TokenAuth):
                if not auth.token:
                    raise ConfigurationError("Vault token is empty: set the block's token")
                self._hvac.token = auth.token
                looked = self._hvac.auth.token.lookup_self()["data"]
                lease = {
                    "lease_duration": looked.get("ttl", 0),
                    "renewable": looked.get("renewable"),
                }
            elif isinstance(auth, JWTAuth):
                token = auth.read_jwt().strip()
                register_secret(token)
                answer = self._hvac.auth.jwt.jwt_login(
                    role=auth.role, jwt=token, use_token=False, path=auth.mount_point
                )
                self._hvac.token = answer["auth"]["client_token"]
                lease = answer["auth"]
            elif isinstance(auth, AppRoleAuth):
                answer = self._hvac.auth.approle.login(
                    role_id=auth.role_id, secret_id=auth.secret_id, mount_point=auth.mount_point
                )
                self._hvac.token = answer["auth"]["client_token"]
                lease = answer["auth"]
            else:
                answer = self._hvac.auth.userpass.login(
                    username=auth.username, password=auth.password, mount_point=auth.mount_point
                )
                self._hvac.token = answer["auth"]["client_token"]
                lease = answer["auth"]
        except (hvac_errors.InvalidRequest, hvac_errors.Forbidden, hvac_errors.Unauthorized) as exc:
            if isinstance(auth, JWTAuth):
                raise VaultRefused(
                    f"Vault login failed ({where}, role {auth.role!r}): {_reason(exc)}; check "
                    "the JWT's expiry, audience and claims against the role",
                    "POST",
                    self._login_url(),
                ) from None
            raise VaultRefused(
                f"Vault login failed ({where}): the credentials were rejected; "
                f"check the {_credential_names(auth)} in the Vault connection block",
                "POST",
                self._login_url(),
            ) from None
        except Exception as exc:  # noqa: BLE001 - every other failure gets the same clear shape
            raise self._unavailable(
                exc, f"logging in ({where})", "POST", self._login_url()
            ) from None
        register_secret(self._hvac.token)
        self.logins += 1
        self._lease(lease)
        self._full_ttl = self._ttl

    def _lease(self, auth: dict[str, Any]) -> None:
        """Note the token's TTL (0: it never expires) and whether it can be renewed."""
        ttl = float(auth.get("lease_duration") or 0)
        self._ttl = ttl
        self._renewable = bool(auth.get("renewable"))
        self._expires_at = time.monotonic() + ttl if ttl else None

    def _fresh_token(self) -> None:
        """Before a use: log in if there is no token; in the last third of its TTL, renew it
        (renew-self) while it is renewable and renewing extends it, else log in again. A
        token the block was given (token method) cannot be replaced and is used as it is."""
        if not self._hvac.token:
            self._login()
            return
        if self._expires_at is None:
            return
        left = self._expires_at - time.monotonic()
        if left > self._ttl / 3 or isinstance(self.auth, TokenAuth) and not self._renewable:
            return
        if self._renewable and left > 0:
            try:
                renewed = self._hvac.auth.token.renew_self()["auth"]
            except (
                hvac_errors.Forbidden,
                hvac_errors.InvalidRequest,
                hvac_errors.InternalServerError,  # OpenBao: "past the max TTL, cannot renew"
            ):
                renewed = None  # refused: log in again below
            except Exception as exc:  # noqa: BLE001
                raise self._unavailable(
                    exc, "renewing its token", "POST", f"{self.url}/v1/auth/token/renew-self"
                ) from None
            if renewed is not None:
                self.renewals += 1
                extended = float(renewed.get("lease_duration") or 0) > left
                self._lease(renewed)
                # Capped by its max TTL, renewing no longer extends it: next time, log in.
                self._renewable = self._renewable and self._ttl >= 0.9 * self._full_ttl
                if extended:
                    return
        if not isinstance(self.auth, TokenAuth):
            self._login()

    def read_secret(
        self,
        path: str,
        mount_point: str = "secret",
        kv_version: int = 2,
        version: int | None = None,
    ) -> dict[str, Any]:
        """Read the key-value pairs at `mount_point/path` (KV v1 or v2; with KV v2, `version`
        pins one version instead of the newest).

        GET: /v1/{mount_point}/data/{path} (v2) or /v1/{mount_point}/{path} (v1)

        Raises:
            VaultRefused: not found, deleted or destroyed, or permission denied (after one
                re-login).
            ConnectionFailed, RequestTimedOut, ServerError: Vault unreachable, slow or sealed.
        """
        if kv_version not in (1, 2):
            raise ConfigurationError(f"kv_version must be 1 or 2, not {kv_version}")
        if version is not None and kv_version != 2:
            raise ConfigurationError("a secret version can be pinned only with KV v2")
        shown = f"{mount_point}/{path}" + (f" version {version}" if version else "")
        url = f"{self.url}/v1/{mount_point}/{'data/' if kv_version == 2 else ''}{path}"
        with self._lock:
            self._fresh_token()
            for attempt in (1, 2):
                try:
                    return self._read(path, mount_point, kv_version, version, shown, url)
                except hvac_errors.Forbidden:
                    # An expired token looks exactly like a forbidden path: log in once more.
                    if attempt == 1 and not isinstance(self.auth, TokenAuth):
                        self._login()
                        continue
                    raise VaultRefused(
                        f"Vault denied reading {shown!r} (KV v{kv_version}): the policy of "
                        f"{self.auth.method} login does not allow it, or the token expired",
                        "GET",
                        url,
                        403,
                    ) from None
                except hvac_errors.InvalidPath:
                    if version is not None:
                        self._version_gone(path, mount_point, version, shown, url)
                    raise VaultRefused(
                        f"no secret at {shown!r} (KV v{kv_version}) in Vault at {self.url}: "
                        "check the path, the mount point and the KV version",
                        "GET",
                        url,
                        404,
                    ) from None
                except Exception as exc:  # noqa: BLE001
                    raise self._unavailable(exc, f"reading {shown!r}", "GET", url) from None
        raise AssertionError("unreachable")

    def _version_gone(
        self, path: str, mount_point: str, version: int, shown: str, url: str
    ) -> None:
        """Raise why a pinned version is not there (destroyed, deleted, never written), when
        the secret's metadata says; return when it does not."""
        try:
            meta = self._hvac.secrets.kv.v2.read_secret_metadata(path, mount_point=mount_point)
        except Exception:  # noqa: BLE001 - no metadata (or no right to it): the plain 404
            return
        known = meta["data"].get("versions") or {}
        state = known.get(str(version))
        if state is None:
            newest = meta["data"].get("current_version")
            raise VaultRefused(
                f"secret {shown!r} (KV v2) has no such version (newest: {newest})", "GET", url, 404
            )
        gone = "destroyed" if state.get("destroyed") else "deleted"
        raise VaultRefused(
            f"secret {shown!r} (KV v2) was {gone}; "
            + (
                "undelete it or pin another version"
                if gone == "deleted"
                else "pin another version or write the secret again"
            ),
            "GET",
            url,
            404,
        )

    def _read(
        self,
        path: str,
        mount_point: str,
        kv_version: int,
        version: int | None,
        shown: str,
        url: str,
    ) -> dict[str, Any]:
        if kv_version == 2:
            answer = self._hvac.secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount_point, version=version, raise_on_deleted_version=False
            )
            data = answer["data"]["data"]
            if data is None:  # a deleted or destroyed version: never an empty secret
                meta = answer["data"].get("metadata") or {}
                self._version_gone(path, mount_point, int(meta.get("version") or 0), shown, url)
                raise VaultRefused(f"secret {shown!r} (KV v2) was deleted", "GET", url, 404)
        else:
            data = self._hvac.secrets.kv.v1.read_secret(path=path, mount_point=mount_point)["data"]
        for value in data.values():
            if isinstance(value, str):
                register_secret(value)
        return data

    def read_secret_key(
        self,
        path: str,
        key: str,
        mount_point: str = "secret",
        kv_version: int = 2,
        version: int | None = None,
    ) -> str:
        """One value of a secret; a clear error when the key is missing."""
        data = self.read_secret(
            path, mount_point=mount_point, kv_version=kv_version, version=version
        )
        if key not in data:
            raise VaultRefused(
                f"secret {mount_point}/{path!s} has no key {key!r} (keys: {sorted(data)})",
                "GET",
                f"{self.url}/v1/{mount_point}/{path}",
            )
        return str(data[key])

    def _login_url(self) -> str:
        mount = getattr(self.auth, "mount_point", "token")
        return (
            f"{self.url}/v1/auth/{mount}/login"
            if mount != "token"
            else f"{self.url}/v1/auth/token/lookup-self"
        )

    def _unavailable(self, exc: Exception, doing: str, method: str, url: str) -> OpsAPIError:
        """A failure that is not a refusal, as the transport error it is."""
        if isinstance(exc, OpsAPIError):
            return exc
        if isinstance(exc, hvac_errors.VaultDown):
            return ServerError(
                f"Vault is sealed or down while {doing}: unseal it and retry", method, url, 503
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return ConnectionFailed(
                f"TLS verification of Vault failed while {doing}: give the CA bundle of "
                "Vault's certificate",
                method,
                url,
            )
        if isinstance(exc, requests.exceptions.RequestException) and is_timeout(exc):
            return RequestTimedOut(f"Vault did not answer in time while {doing}", method, url)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return ConnectionFailed(
                f"cannot reach Vault while {doing}: is it running at that address?", method, url
            )
        if isinstance(exc, hvac_errors.InternalServerError | hvac_errors.BadGateway):
            return ServerError(f"Vault failed while {doing}: {_short(exc)}", method, url, 500)
        return RequestFailed(
            f"Vault failed while {doing}: {type(exc).__name__}: {_short(exc)}", method, url
        )


def _credential_names(auth: VaultAuth) -> str:
    return {
        "token": "token",
        "approle": "role_id and secret_id",
        "userpass": "username and password",
        "jwt": "JWT and role",
    }[auth.method]


def _reason(exc: Exception) -> str:
    """What Vault said, without hvac's wrapping (and with any secret masked)."""
    errors = getattr(exc, "errors", None) or [str(exc)]
    said = "; ".join(str(e).removeprefix("error validating token: ") for e in errors)
    return _short(Exception(said))


def _short(exc: Exception) -> str:
    return mask_secrets(str(exc))[:200]
