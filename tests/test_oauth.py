"""OAuth done right, against the HubSpot sandbox over real HTTP: the full dance with a scripted browser
then a sync; least scopes; every attack rejected with a clear error; refresh ahead of expiry, single-flight
across 8 threads and 2 processes with rotating refresh tokens; invalid_grant -> needs_reauth without
stopping other connections; disconnect revokes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from canonry import ops
from canonry.cli import app
from canonry.errors import ErrorClass
from canonry.oauth import AuthorizationError, OAuthFlow, connect, least_scopes, oauth_credential, token_status
from canonry.pipeline import sync
from canonry.sandbox import DEFAULT_TOKENS
from canonry.secrets import SecretNotFound, resolve_secret
from tests.helpers import request_log
from tests.oauth_helpers import (
    CLIENT_SECRET,
    CLIENT_SECRET_ENV,
    OAuthSandbox,
    authorize,
    callback_params,
    free_port,
    scripted_browser,
)

READ_SCOPES = ["oauth", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read",
               "crm.objects.owners.read"]
SCALE = 40
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hs(data_dir, sandbox_factory, tmp_path, monkeypatch) -> OAuthSandbox:
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    alt = f"http://127.0.0.1:{free_port()}/alt-callback"
    server = sandbox_factory("hubspot", scale=SCALE, redirect_uris=(redirect, alt), rotate_refresh_tokens=True)
    monkeypatch.setenv(CLIENT_SECRET_ENV, CLIENT_SECRET)
    return OAuthSandbox(server, tmp_path / "connections.yml", redirect, alt)


def _connected(hs: OAuthSandbox, connection_id: str = "hubspot-acme", **overrides):
    connection = hs.add(connection_id, **overrides)
    connect(connection, browser=scripted_browser, timeout=15)
    return hs.get(connection_id)


# -- the dance ---------------------------------------------------------------------------------------

def test_full_dance_then_sync_with_least_scopes(hs):
    connection = hs.add("hubspot-acme")
    calls = hs.oauth.token_calls
    result = connect(connection, browser=scripted_browser, timeout=15)

    assert result.scopes == READ_SCOPES  # read scopes only: no write-back configured
    assert hs.oauth.token_calls == calls + 1
    (authorize_request,) = [r for r in request_log(hs.server) if r["path"] == "/oauth/authorize"]
    query = dict(part.split("=", 1) for part in authorize_request["query"].split("&"))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and "write" not in query["scope"]
    status = token_status(connection)
    assert status["connection_id"] == "hubspot-acme" and status["status"] == "active"
    assert status["token_endpoint"] == hs.server.base_url + "/oauth/v1/token"
    assert "access_token" not in status and "refresh_token" not in status

    synced = sync(hs.get("hubspot-acme"))
    assert synced.status == "success", synced.error
    assert synced.records["contacts"] == SCALE
    assert ops.connection_states()["hubspot-acme"]["state"] == "active"


def test_write_scopes_only_when_write_back_is_on(hs):
    reader = hs.add("hubspot-reader", objects=["contacts", "owners"])
    assert least_scopes(reader) == ["oauth", "crm.objects.contacts.read", "crm.objects.owners.read"]
    writer = hs.add("hubspot-writer", objects=["contacts"], write_back={"enabled": True, "objects": ["contacts"]})
    assert least_scopes(writer) == ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"]
    disabled = hs.add("hubspot-off", objects=["contacts"], write_back={"enabled": False, "objects": ["contacts"]})
    assert least_scopes(disabled) == ["oauth", "crm.objects.contacts.read"]
    assert "crm.objects.contacts.write" in OAuthFlow(writer).url.replace("%2E", ".")


def test_callback_server_answers_only_the_registered_path_and_state(hs):
    connection = hs.add("hubspot-acme")
    seen: dict[str, int] = {}

    def wary_browser(url: str) -> None:
        callback = authorize(url)
        params = callback_params(callback)
        base = hs.redirect_uri.rsplit("/", 1)[0]
        seen["wrong path"] = requests.get(f"{base}/other?code={params['code']}&state={params['state']}",
                                          timeout=5).status_code
        seen["wrong state"] = requests.get(f"{hs.redirect_uri}?code={params['code']}&state=forged",
                                           timeout=5).status_code
        seen["real"] = requests.get(callback, timeout=5).status_code

    result = connect(connection, browser=wary_browser, timeout=15)
    assert seen == {"wrong path": 404, "wrong state": 400, "real": 200}
    assert result.scopes == READ_SCOPES
    assert hs.oauth.token_calls == 1  # the forged callbacks never reached the token endpoint
    with pytest.raises(requests.ConnectionError):  # the callback server is gone: nothing to replay against
        requests.get(hs.redirect_uri, timeout=2)


# -- attacks -------------------------------------------------------------------------------------------

def test_wrong_state_is_rejected_before_any_token_request(hs):
    flow = OAuthFlow(hs.add("hubspot-acme"))
    callback = authorize(flow.url)
    with pytest.raises(AuthorizationError) as caught:
        flow.complete(callback.replace(f"state={flow.state}", "state=attacker-state"))
    assert caught.value.reason == "state_mismatch" and "does not match" in str(caught.value)
    with pytest.raises(AuthorizationError) as missing:
        flow.complete(callback.split("&state=")[0])
    assert missing.value.reason == "state_mismatch"
    assert hs.oauth.token_calls == 0
    flow.complete(callback)  # the legitimate callback still completes
    assert hs.oauth.token_calls == 1


def test_replayed_state_is_rejected(hs):
    flow = OAuthFlow(hs.add("hubspot-acme"))
    callback = authorize(flow.url)
    flow.complete(callback)
    with pytest.raises(AuthorizationError) as caught:
        flow.complete(callback)
    assert caught.value.reason == "state_replayed" and "single-use" in str(caught.value)
    assert hs.oauth.token_calls == 1


def test_redirect_uri_mismatch_is_rejected(hs):
    connection = hs.add("hubspot-acme")
    # 1. A callback arriving anywhere but the exact registered URI.
    flow = OAuthFlow(connection)
    params = callback_params(authorize(flow.url))
    other = hs.redirect_uri.replace("/callback", "/elsewhere")
    with pytest.raises(AuthorizationError) as local:
        flow.complete(f"{other}?code={params['code']}&state={params['state']}")
    assert local.value.reason == "redirect_mismatch" and hs.redirect_uri in str(local.value)
    # 2. A redirect URI the provider never registered: the provider refuses to authorise.
    unregistered = hs.add("hubspot-unregistered", auth={"redirect_uri": f"http://127.0.0.1:{free_port()}/cb"})
    with pytest.raises(AuthorizationError) as refused:
        connect(unregistered, browser=scripted_browser, timeout=5)
    assert refused.value.reason == "browser_failed" and "redirect_uri does not match" in str(refused.value)
    # 3. A code issued for one redirect URI, exchanged with another.
    alt_flow = OAuthFlow(hs.add("hubspot-alt", auth={"redirect_uri": hs.alt_redirect_uri}))
    stolen = callback_params(authorize(alt_flow.url))["code"]
    victim = OAuthFlow(connection)
    with pytest.raises(AuthorizationError) as swapped:
        victim.complete(f"{hs.redirect_uri}?code={stolen}&state={victim.state}")
    assert swapped.value.reason == "redirect_mismatch"
    assert "redirect_uri does not match" in str(swapped.value)
    with pytest.raises(SecretNotFound):
        resolve_secret(connection.auth.secret)  # nothing was stored


def test_expired_authorization_code_is_rejected(hs):
    hs.oauth.code_ttl = 0
    flow = OAuthFlow(hs.add("hubspot-acme"))
    callback = authorize(flow.url)
    time.sleep(0.01)
    with pytest.raises(AuthorizationError) as caught:
        flow.complete(callback)
    assert caught.value.reason == "code_expired" and caught.value.error_class == ErrorClass.AUTH_EXPIRED
    assert "canonry connect hubspot-acme" in str(caught.value)


def test_reused_authorization_code_is_rejected(hs):
    connection = hs.add("hubspot-acme")
    first = OAuthFlow(connection)
    code = callback_params(authorize(first.url))["code"]
    first.complete(f"{hs.redirect_uri}?code={code}&state={first.state}")
    second = OAuthFlow(connection)  # a captured code replayed into a fresh flow
    with pytest.raises(AuthorizationError) as caught:
        second.complete(f"{hs.redirect_uri}?code={code}&state={second.state}")
    assert caught.value.reason == "code_reused" and "already used" in str(caught.value)


def test_pkce_verifier_mismatch_is_rejected(hs):
    connection = hs.add("hubspot-acme")
    victim = OAuthFlow(connection)
    intercepted = callback_params(authorize(victim.url))["code"]
    attacker = OAuthFlow(connection)  # its own state and verifier, someone else's code
    assert attacker.code_verifier != victim.code_verifier
    with pytest.raises(AuthorizationError) as caught:
        attacker.complete(f"{hs.redirect_uri}?code={intercepted}&state={attacker.state}")
    assert caught.value.reason == "pkce_mismatch" and "code_verifier" in str(caught.value)
    with pytest.raises(SecretNotFound):
        resolve_secret(connection.auth.secret)


def test_a_token_for_another_connection_is_rejected(hs):
    _connected(hs, "hubspot-acme")
    thief = hs.add("hubspot-beta", auth={"secret": "local:hubspot-acme-token"})  # points at acme's token set
    result = sync(thief)
    assert result.status == "failed" and result.error.error_class == ErrorClass.CONFIG_ERROR
    assert "issued to connection 'hubspot-acme'" in str(result.error)
    assert result.calls == 0
    report = CliRunner().invoke(app, ["validate", "--json", "--config", str(hs.path)])
    codes = [(p["code"], p["path"]) for p in json.loads(report.stdout)["problems"]]
    assert codes == [("token_wrong_connection", "connections.1.auth.secret")]


def test_provider_refusal_is_reported(hs):
    flow = OAuthFlow(hs.add("hubspot-acme"))
    with pytest.raises(AuthorizationError) as caught:
        flow.complete(f"{hs.redirect_uri}?error=access_denied&error_description=user+said+no&state={flow.state}")
    assert caught.value.reason == "provider_denied" and "user said no" in str(caught.value)


# -- refresh -------------------------------------------------------------------------------------------

def _credential(connection):
    auth = connection.auth
    return oauth_credential(connection.id, connection.provider, auth.secret, auth.client_secret,
                            client_id=auth.client_id)


def test_refresh_ahead_of_expiry_with_skew(hs):
    connection = _connected(hs)
    first = hs.token_set(connection)
    calls = hs.oauth.token_calls
    hs.edit_token_set(connection, expires_at=time.time() + 3600)
    assert _credential(connection).value() == first["access_token"]
    assert hs.oauth.token_calls == calls
    hs.edit_token_set(connection, expires_at=time.time() + 60)  # inside the 120 s skew: refresh now
    fresh = _credential(connection).value()
    assert fresh != first["access_token"] and hs.oauth.token_calls == calls + 1
    stored = hs.token_set(connection)
    assert stored["access_token"] == fresh and stored["refresh_token"] != first["refresh_token"]  # rotated
    assert stored["expires_at"] > time.time() + 1700
    assert hs.oauth.token_state(fresh) == "valid"


def test_concurrent_refresh_is_single_flight_across_threads_and_processes(hs, tmp_path):
    connection = _connected(hs)
    old = hs.token_set(connection)
    hs.edit_token_set(connection, expires_at=time.time() - 5)
    hs.oauth.expire_all_access_tokens()
    calls = hs.oauth.token_calls
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.oauth_worker", str(hs.path), connection.id, str(go),
                                 "4"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    deadline = time.time() + 30
    while len(list(tmp_path.glob("go.ready-*"))) < 2 and time.time() < deadline:
        time.sleep(0.02)
    credential = _credential(connection)
    barrier = threading.Barrier(8)
    values: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        barrier.wait()
        try:
            values.append(credential.value())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    go.touch()
    for thread in threads:
        thread.join()
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))

    assert errors == [] and all(r["errors"] == [] for r in reports)  # no invalid_grant anywhere
    assert hs.oauth.token_calls == calls + 1  # exactly one refresh call
    assert len(set(values)) == 1 and len(values) == 8
    digest = hashlib.sha256(values[0].encode()).hexdigest()
    assert all(h == digest for r in reports for h in r["hashes"]) and sum(len(r["hashes"]) for r in reports) == 8
    assert values[0] != old["access_token"] and hs.oauth.token_state(values[0]) == "valid"
    stored = hs.token_set(connection)
    assert stored["refresh_token"] != old["refresh_token"]
    assert old["refresh_token"] not in hs.oauth.refresh_tokens and stored["refresh_token"] in hs.oauth.refresh_tokens


def test_invalid_grant_needs_reauth_and_other_connections_go_on(hs, monkeypatch):
    broken = _connected(hs, "hubspot-acme")
    monkeypatch.setenv("CANONRY_TEST_PRIVATE_APP", DEFAULT_TOKENS["hubspot"])
    hs.add("hubspot-beta", auth={"kind": "api_key", "secret": "env:CANONRY_TEST_PRIVATE_APP", "client_id": None,
                                 "client_secret": None, "redirect_uri": None}, objects=["owners"])
    token = hs.token_set(broken)
    hs.oauth.revoke(token["refresh_token"])  # revoked at the provider (e.g. the app was uninstalled)
    hs.edit_token_set(broken, expires_at=time.time() - 5)
    calls = hs.oauth.token_calls

    result = CliRunner().invoke(app, ["sync", "--config", str(hs.path), "--no-transform"])
    assert result.exit_code == 1
    assert "hubspot-acme: [auth_expired]" in result.output and "canonry connect hubspot-acme" in result.output
    assert "hubspot-beta: 5 records" in result.output  # the other connection synced
    assert hs.oauth.token_calls == calls + 1
    states = ops.connection_states()
    assert states["hubspot-acme"]["state"] == "needs_reauth" and states["hubspot-beta"]["state"] == "active"
    assert states["hubspot-acme"]["error_class"] == "auth_expired"
    assert token_status(broken)["status"] == "needs_reauth"

    again = sync(hs.get("hubspot-acme"))  # stops at once: no second refresh with a dead token, no API call
    assert again.status == "failed" and again.error.error_class == ErrorClass.AUTH_EXPIRED
    assert "needs re-authorisation" in str(again.error)
    assert hs.oauth.token_calls == calls + 1 and again.calls == 0

    connect(hs.get("hubspot-acme", require_tokens=False), browser=scripted_browser, timeout=15)
    assert token_status(broken)["status"] == "active"
    assert ops.connection_states()["hubspot-acme"]["state"] == "active"
    assert hs.oauth.token_state(_credential(hs.get("hubspot-acme")).value()) == "valid"


def test_disconnect_revokes_at_the_provider_and_deletes(hs):
    connection = _connected(hs)
    token = hs.token_set(connection)
    result = CliRunner().invoke(app, ["disconnect", connection.id, "--config", str(hs.path)])
    assert result.exit_code == 0, result.output
    assert "revoked refresh_token, access_token; stored secret deleted" in result.output
    assert token["refresh_token"] not in hs.oauth.refresh_tokens
    assert hs.oauth.token_state(token["access_token"]) == "invalid"
    assert [r for r in request_log(hs.server) if r["path"] == "/oauth/2026-03/token/revoke"]
    with pytest.raises(SecretNotFound):
        resolve_secret(connection.auth.secret)
    assert ops.connection_states()[connection.id]["state"] == "disconnected"
    assert token["access_token"] not in result.output and token["refresh_token"] not in result.output


def test_canonry_connect_command_end_to_end(hs):
    """`canonry connect <id> --no-browser` prints the URL; a scripted browser follows it; tokens stored."""
    connection = hs.add("hubspot-acme")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    process = subprocess.Popen([sys.executable, "-m", "canonry.cli", "connect", connection.id, "--config",
                                str(hs.path), "--no-browser", "--timeout", "60"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    for line in process.stderr:
        if line.strip().startswith("http://"):
            url = line.strip()
            break
    assert url and "code_challenge_method=S256" in url
    scripted_browser(url)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"{connection.id}: connected; token set stored at local:hubspot-acme-token" in out
    assert "granted scopes: " + " ".join(READ_SCOPES) in out
    token = hs.token_set(connection)
    assert token["access_token"] not in out + err and token["refresh_token"] not in out + err
    assert token_status(connection)["status"] == "active"
