"""OAuth done right, over real HTTP against the HubSpot, Salesforce and Lever sandboxes: the full dance with
a scripted browser then a sync; least scopes; every attack rejected with a clear error (all three providers);
refresh ahead of expiry, single-flight across 8 threads and 2 processes with rotating refresh tokens
(HubSpot and Lever); invalid_grant -> needs_reauth without stopping other connections; disconnect revokes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from typer.testing import CliRunner

from canonry import ops
from canonry.cli import app
from canonry.errors import ErrorClass
from canonry.oauth import OAuthFlow, connect
from canonry.oauth_endpoints import AuthorizationError, least_scopes
from canonry.oauth_tokens import oauth_credential, token_status
from canonry.pipeline import sync
from canonry.sandbox import DEFAULT_TOKENS
from canonry.secrets import SecretNotFound, resolve_secret
from tests.helpers import request_log, truth
from tests.oauth_helpers import (
    PROVIDERS,
    OAuthSandbox,
    authorize,
    callback_params,
    free_port,
    reserved_ports,
    scripted_browser,
)

READ_SCOPES = ["oauth", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read",
               "crm.objects.owners.read"]  # a HubSpot connection that syncs every object
SCALE = 40
ROOT = Path(__file__).resolve().parent.parent


def _oauth_sandbox(slug: str, sandbox_factory, tmp_path, monkeypatch) -> OAuthSandbox:
    provider = PROVIDERS[slug]
    with reserved_ports(2) as (port, alt_port):
        redirect, alt = f"http://127.0.0.1:{port}/callback", f"http://127.0.0.1:{alt_port}/alt-callback"
        server = sandbox_factory(slug, scale=SCALE, redirect_uris=(redirect, alt), **provider.options)
    monkeypatch.setenv(provider.secret_env, provider.client_secret)
    return OAuthSandbox(server, tmp_path / "connections.yml", redirect, alt, provider=provider)


@pytest.fixture
def hs(data_dir, sandbox_factory, tmp_path, monkeypatch) -> OAuthSandbox:
    return _oauth_sandbox("hubspot", sandbox_factory, tmp_path, monkeypatch)


@pytest.fixture(params=sorted(PROVIDERS))
def sb(request, data_dir, sandbox_factory, tmp_path, monkeypatch) -> OAuthSandbox:
    """Each OAuth provider's sandbox in turn (indirect-parametrize to choose)."""
    return _oauth_sandbox(request.param, sandbox_factory, tmp_path, monkeypatch)


def _connected(sb: OAuthSandbox, connection_id: str | None = None, **overrides):
    connection_id = connection_id or f"{sb.provider.slug}-acme"
    connection = sb.add(connection_id, **overrides)
    connect(connection, browser=scripted_browser, timeout=15)
    return sb.get(connection_id)


def _add(sb: OAuthSandbox, suffix: str = "acme", **overrides):
    return sb.add(f"{sb.provider.slug}-{suffix}", **overrides)


# -- the dance ---------------------------------------------------------------------------------------

def test_full_dance_then_sync_with_least_scopes(sb):
    """Scripted browser -> authorize -> redirect -> our callback -> code + PKCE exchange -> token set in the
    local store -> a sync with it. Only the least scopes are requested (no write scopes: no write-back)."""
    provider = sb.provider
    connection = _add(sb, objects=list(provider.objects))
    calls = sb.oauth.token_calls
    result = connect(connection, browser=scripted_browser, timeout=15)

    assert result.scopes == list(provider.least_scopes)
    assert sb.oauth.token_calls == calls + 1
    (authorize_request,) = [r for r in request_log(sb.server) if r["path"] == provider.authorize_path]
    query = {k: v[0] for k, v in parse_qs(authorize_request["query"]).items()}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and query["redirect_uri"] == sb.redirect_uri
    assert query["scope"].split() == list(provider.least_scopes) and "write" not in query["scope"]
    if provider.slug == "lever":  # Auth0: the API audience on the authorize request (and the token request)
        assert query["audience"] == "https://api.lever.co/v1/"
    status = token_status(connection)
    assert status["connection_id"] == connection.id and status["status"] == "active"
    assert status["token_endpoint"] == sb.server.base_url + provider.token_path
    assert "access_token" not in status and "refresh_token" not in status
    stored = sb.token_set(connection)  # in the encrypted local store, behind the connection's reference
    assert connection.auth.secret.startswith("local:") and stored["refresh_token"]
    assert sb.oauth.token_state(stored["access_token"]) == "valid"
    if provider.slug == "salesforce":  # API calls go to the org's instance, named in the token answer
        assert status["instance_url"] == sb.server.base_url

    synced = sync(sb.get(connection.id))
    assert synced.status == "success", synced.error
    for resource, truth_object in provider.checks:
        alive = [r for r in truth(sb.server, truth_object) if not r["deleted"]]
        assert synced.records[resource] == len(alive) > 0, resource
    assert ops.connection_states()[connection.id]["state"] == "active"
    assert sb.oauth.token_calls == calls + 1  # the fresh token served the whole sync: no refresh
    assert sb.token_set(connection)["access_token"] == stored["access_token"]


def test_write_scopes_only_when_write_back_is_on(hs):
    reader = hs.add("hubspot-reader", objects=["contacts", "owners"])
    assert least_scopes(reader) == ["oauth", "crm.objects.contacts.read", "crm.objects.owners.read"]
    writer = hs.add("hubspot-writer", objects=["contacts"], write_back={"enabled": True, "objects": ["contacts"]})
    assert least_scopes(writer) == ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"]
    disabled = hs.add("hubspot-off", objects=["contacts"], write_back={"enabled": False, "objects": ["contacts"]})
    assert least_scopes(disabled) == ["oauth", "crm.objects.contacts.read"]
    assert "crm.objects.contacts.write" in OAuthFlow(writer).url.replace("%2E", ".")


@pytest.mark.parametrize("sb", ["lever"], indirect=True)
def test_lever_write_scopes_only_for_write_back_objects(sb):
    reader = _add(sb, "reader", objects=["opportunities"])
    assert least_scopes(reader) == ["offline_access", "confidential:access:admin", "opportunities:read:admin"]
    writer = _add(sb, "writer", objects=["opportunities", "users"],
                  write_back={"enabled": True, "objects": ["opportunities"]})
    assert least_scopes(writer) == ["offline_access", "confidential:access:admin", "opportunities:read:admin",
                                    "users:read:admin", "opportunities:write:admin"]
    result = connect(writer, browser=scripted_browser, timeout=15)
    assert result.scopes == least_scopes(writer) and "postings:write:admin" not in result.scopes


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


# -- attacks (every provider) ------------------------------------------------------------------------

def test_wrong_state_is_rejected_before_any_token_request(sb):
    flow = OAuthFlow(_add(sb))
    callback = authorize(flow.url)
    with pytest.raises(AuthorizationError) as caught:
        flow.complete(callback.replace(f"state={flow.state}", "state=attacker-state"))
    assert caught.value.reason == "state_mismatch" and "does not match" in str(caught.value)
    with pytest.raises(AuthorizationError) as missing:
        flow.complete(callback.split("&state=")[0])
    assert missing.value.reason == "state_mismatch"
    assert sb.oauth.token_calls == 0
    flow.complete(callback)  # the legitimate callback still completes
    assert sb.oauth.token_calls == 1


def test_replayed_state_is_rejected(sb):
    flow = OAuthFlow(_add(sb))
    callback = authorize(flow.url)
    flow.complete(callback)
    with pytest.raises(AuthorizationError) as caught:
        flow.complete(callback)
    assert caught.value.reason == "state_replayed" and "single-use" in str(caught.value)
    assert sb.oauth.token_calls == 1


def test_redirect_uri_mismatch_is_rejected(sb):
    slug = sb.provider.slug
    connection = _add(sb)
    # 1. A callback arriving anywhere but the exact registered URI.
    flow = OAuthFlow(connection)
    params = callback_params(authorize(flow.url))
    other = sb.redirect_uri.replace("/callback", "/elsewhere")
    with pytest.raises(AuthorizationError) as local:
        flow.complete(f"{other}?code={params['code']}&state={params['state']}")
    assert local.value.reason == "redirect_mismatch" and sb.redirect_uri in str(local.value)
    # 2. A redirect URI the provider never registered: the provider refuses to authorise.
    unregistered = sb.add(f"{slug}-unregistered", auth={"redirect_uri": f"http://127.0.0.1:{free_port()}/cb"})
    with pytest.raises(AuthorizationError) as refused:
        connect(unregistered, browser=scripted_browser, timeout=5)
    assert refused.value.reason == "browser_failed" and "redirect_uri does not match" in str(refused.value)
    # 3. A code issued for one redirect URI, exchanged with another.
    alt_flow = OAuthFlow(sb.add(f"{slug}-alt", auth={"redirect_uri": sb.alt_redirect_uri}))
    stolen = callback_params(authorize(alt_flow.url))["code"]
    victim = OAuthFlow(connection)
    calls = sb.oauth.token_calls
    with pytest.raises(AuthorizationError) as swapped:
        victim.complete(f"{sb.redirect_uri}?code={stolen}&state={victim.state}")
    assert swapped.value.reason == sb.provider.code_reason("redirect_mismatch")
    assert "rejected the authorization code" in str(swapped.value) and sb.oauth.token_calls == calls + 1
    if sb.provider.specific_code_errors:
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


def test_reused_authorization_code_is_rejected(sb):
    connection = _add(sb)
    first = OAuthFlow(connection)
    code = callback_params(authorize(first.url))["code"]
    first.complete(f"{sb.redirect_uri}?code={code}&state={first.state}")
    stored = sb.token_set(connection)
    second = OAuthFlow(connection)  # a captured code replayed into a fresh flow
    with pytest.raises(AuthorizationError) as caught:
        second.complete(f"{sb.redirect_uri}?code={code}&state={second.state}")
    assert caught.value.reason == sb.provider.code_reason("code_reused")
    assert caught.value.error_class == ErrorClass.AUTH_EXPIRED
    if sb.provider.specific_code_errors:
        assert "already used" in str(caught.value)
    assert sb.token_set(connection) == stored  # the replay changed nothing


def test_pkce_verifier_mismatch_is_rejected(sb):
    connection = _add(sb)
    victim = OAuthFlow(connection)
    intercepted = callback_params(authorize(victim.url))["code"]
    attacker = OAuthFlow(connection)  # its own state and verifier, someone else's code
    assert attacker.code_verifier != victim.code_verifier
    with pytest.raises(AuthorizationError) as caught:
        attacker.complete(f"{sb.redirect_uri}?code={intercepted}&state={attacker.state}")
    assert caught.value.reason == sb.provider.code_reason("pkce_mismatch")
    if sb.provider.specific_code_errors:
        assert "code_verifier" in str(caught.value)
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


@pytest.mark.parametrize("sb", ["hubspot", "lever"], indirect=True)
def test_refresh_ahead_of_expiry_with_skew(sb):
    connection = _connected(sb)
    first = sb.token_set(connection)
    calls = sb.oauth.token_calls
    sb.edit_token_set(connection, expires_at=time.time() + 3600)
    assert _credential(connection).value() == first["access_token"]
    assert sb.oauth.token_calls == calls
    sb.edit_token_set(connection, expires_at=time.time() + 60)  # inside the 120 s skew: refresh now
    fresh = _credential(connection).value()
    assert fresh != first["access_token"] and sb.oauth.token_calls == calls + 1
    stored = sb.token_set(connection)
    assert stored["access_token"] == fresh and stored["refresh_token"] != first["refresh_token"]  # rotated
    assert stored["expires_at"] > time.time() + 1700
    assert sb.oauth.token_state(fresh) == "valid"


@pytest.mark.parametrize("sb", ["hubspot", "lever"], indirect=True)
def test_concurrent_refresh_is_single_flight_across_threads_and_processes(sb, tmp_path):
    """An expired rotating refresh token, 8 threads here and 4 in each of 2 other processes: exactly one
    refresh call (Lever rotates for real: a second refresh with the old token would be invalid_grant)."""
    connection = _connected(sb)
    old = sb.token_set(connection)
    sb.edit_token_set(connection, expires_at=time.time() - 5)
    sb.oauth.expire_all_access_tokens()
    calls = sb.oauth.token_calls
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.oauth_worker", str(sb.path), connection.id, str(go),
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
    assert sb.oauth.token_calls == calls + 1  # exactly one refresh call
    assert len(set(values)) == 1 and len(values) == 8
    digest = hashlib.sha256(values[0].encode()).hexdigest()
    assert all(h == digest for r in reports for h in r["hashes"]) and sum(len(r["hashes"]) for r in reports) == 8
    assert values[0] != old["access_token"] and sb.oauth.token_state(values[0]) == "valid"
    stored = sb.token_set(connection)
    assert stored["refresh_token"] != old["refresh_token"]
    assert old["refresh_token"] not in sb.oauth.refresh_tokens and stored["refresh_token"] in sb.oauth.refresh_tokens


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


def test_disconnect_revokes_at_the_provider_and_deletes(sb):
    connection = _connected(sb)
    token = sb.token_set(connection)
    result = CliRunner().invoke(app, ["disconnect", connection.id, "--config", str(sb.path)])
    assert result.exit_code == 0, result.output
    assert "stored secret deleted" in result.output and "revoked refresh_token" in result.output
    assert token["refresh_token"] not in sb.oauth.refresh_tokens
    assert sb.oauth.token_state(token["access_token"]) == "invalid"
    assert [r for r in request_log(sb.server) if r["path"] == sb.provider.revoke_path]
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
