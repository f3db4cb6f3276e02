"""JWT login to the lab's OpenBao: the `jwt` method trusts the lab's issuer (its public key in
`jwt_validation_pubkeys`), the way a Kubernetes service-account token or a CI OIDC token logs
in without a Kubernetes API server. Each refusal is one clear line naming the role and the
reason, with the JWT never shown."""

from __future__ import annotations

import json

import pytest

from opsflow.blocks import VaultConnection, VaultSecret
from opsflow.lab.jwt_issuer import JWTIssuer
from opsflow.lab.vault_seed import ROLE_NAME, SECRET_PATH
from opsflow.opsapi import ConfigurationError, Transport, VaultRefused
from tests.conftest import Lab
from tests.test_vault import root_client


@pytest.fixture
def issuer(lab: Lab) -> JWTIssuer:
    return JWTIssuer(lab.config.dir / "jwt")


def jwt_connection(lab: Lab, **fields: object) -> VaultConnection:
    return VaultConnection(
        url=lab.config.vault_url,
        auth_method="jwt",
        transport=Transport(timeout=10, ca_cert=str(lab.config.vault_ca_cert)),
        **{"jwt_role": ROLE_NAME, **fields},
    )


def jwt_logins(lab: Lab) -> int:
    """Logins through the jwt method, as OpenBao's audit device recorded them."""
    count = 0
    for line in lab.config.vault_audit_log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("type") == "response" and entry["request"]["path"] == "auth/jwt/login":
            count += bool((entry.get("response") or {}).get("auth"))
    return count


def test_a_service_account_jwt_in_a_file_logs_in_and_is_re_read_at_each_login(
    lab: Lab, issuer: JWTIssuer, tmp_path
):
    token_file = tmp_path / "service-account-token"
    token_file.write_text(issuer.issue(lifetime=600))
    before = jwt_logins(lab)

    client = jwt_connection(lab, jwt_path=str(token_file)).get_client()
    assert client.read_secret(SECRET_PATH)["token"] == lab.secrets["platform_token"]

    # The kubelet rotates a projected token: the next login reads the new one.
    token_file.write_text(issuer.issue(lifetime=600, jti="rotated"))
    client.login()
    assert client.read_secret(SECRET_PATH)["token"] == lab.secrets["platform_token"]
    assert client.logins == 2
    assert jwt_logins(lab) - before == 2


def test_a_jwt_from_an_environment_variable_logs_in(lab, issuer, monkeypatch):
    monkeypatch.setenv("CI_JOB_JWT", issuer.issue())
    client = jwt_connection(lab, jwt_env="CI_JOB_JWT").get_client()
    assert client.read_secret(SECRET_PATH)["token"] == lab.secrets["platform_token"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"lifetime": -600}, "invalid expiration time (exp) claim: token is expired"),
        ({"audience": "someone-else"}, "invalid audience (aud) claim"),
        ({"subject": "system:serviceaccount:ops:intruder"}, "invalid subject (sub) claim"),
    ],
)
def test_a_refused_jwt_is_one_line_naming_the_role_and_the_reason(
    lab, issuer, tmp_path, claims, reason
):
    token = issuer.issue(**claims)
    token_file = tmp_path / "service-account-token"
    token_file.write_text(token)

    with pytest.raises(VaultRefused) as caught:
        jwt_connection(lab, jwt_path=str(token_file)).get_client().login()

    message = str(caught.value)
    assert f"role {ROLE_NAME!r}" in message
    assert reason in message, message
    assert "\n" not in message
    assert token not in message and token.split(".")[1] not in message


def test_a_missing_jwt_file_or_variable_names_the_field(lab, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigurationError, match="jwt_path .*nope"):
        jwt_connection(lab, jwt_path=str(missing)).get_client().login()
    with pytest.raises(ConfigurationError, match="jwt_env 'OPSFLOW_NO_SUCH_JWT'"):
        jwt_connection(lab, jwt_env="OPSFLOW_NO_SUCH_JWT").get_client().login()
    with pytest.raises(ConfigurationError, match="needs jwt_role"):
        jwt_connection(lab, jwt_role=None).get_client()


def test_a_jwt_kept_in_vault_logs_in_through_another_connection(lab, issuer):
    """The JWT lives in a KV secret that another connection (its own AppRole, allowed only
    that path) reads: the pattern of a token one Vault hands out to log in to another."""
    root = root_client(lab)
    root.secrets.kv.v2.create_or_update_secret("ci/jwt", secret={"jwt": issuer.issue()})
    root.sys.create_or_update_policy(
        "jwt-reader", 'path "secret/data/ci/jwt" {\n  capabilities = ["read"]\n}\n'
    )
    root.auth.approle.create_or_update_approle("jwt-reader", token_policies=["jwt-reader"])
    reader = VaultConnection(
        url=lab.config.vault_url,
        role_id=root.auth.approle.read_role_id("jwt-reader")["data"]["role_id"],
        secret_id=root.auth.approle.generate_secret_id("jwt-reader")["data"]["secret_id"],
        transport=Transport(timeout=10, ca_cert=str(lab.config.vault_ca_cert)),
    )
    VaultSecret(vault=reader, path="ci/jwt", key="jwt").save("ci-jwt", overwrite=True)
    before = jwt_logins(lab)

    client = jwt_connection(lab, jwt_vault_secret="ci-jwt").get_client()

    assert client.read_secret(SECRET_PATH)["token"] == lab.secrets["platform_token"]
    assert jwt_logins(lab) - before == 1


def test_a_jwt_that_would_need_its_own_login_to_be_read_is_refused(lab):
    looping = jwt_connection(lab, jwt_vault_secret="jwt-through-itself")
    VaultSecret(vault=looping, path="ci/jwt", key="jwt").save("jwt-through-itself", overwrite=True)

    with pytest.raises(ConfigurationError) as caught:
        looping.get_client().login()

    assert str(caught.value) == (
        "Vault connection: jwt_vault_secret 'jwt-through-itself' is read through this same "
        "connection, which needs the JWT to log in: give it a secret read through another "
        "connection"
    )


def test_a_jwt_vault_secret_that_is_not_saved_is_named(lab):
    with pytest.raises(ConfigurationError, match="jwt_vault_secret 'no-such-block' is not a"):
        jwt_connection(lab, jwt_vault_secret="no-such-block").get_client().login()
