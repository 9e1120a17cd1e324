"""`canonry webhooks serve` over real HTTP: each provider's valid deliveries are journaled (durably, before
the 2xx) and deduplicated; every attack is refused with the status that stops the provider's retries, and
writes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from canonry.sandbox import DEFAULT_TOKENS
from canonry.warehouse import connect
from sources.greenhouse.helpers import sign_webhook as greenhouse_sign
from sources.salesforce.webhooks import SOAP_ACK
from tests.webhooks.helpers import (
    SECRETS,
    WebhookServer,
    hubspot_event,
    journal_rows,
    lever_body,
    pipedrive_event,
    post_ashby,
    post_greenhouse,
    post_hubspot,
    post_pipedrive,
    post_salesforce,
    salesforce_message,
    set_secret_env,
    webhook_block,
)

PROVIDERS = ("hubspot", "salesforce", "pipedrive", "greenhouse", "lever", "ashby")
MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebhookServer, Path]]:
    """One server for the module (a fresh data dir), a connection per provider with webhooks."""
    root = tmp_path_factory.mktemp("webhooks-intake")
    env = {f"CANONRY_TEST_WEBHOOK_{p.upper()}": s for p, s in SECRETS.items()}
    env.update({f"CANONRY_TEST_AUTH_{p.upper()}": DEFAULT_TOKENS[p] for p in PROVIDERS})
    env.update(CANONRY_DATA_DIR=str(root / "data"), CANONRY_KEY_FILE=str(root / "keys" / "master.key"))
    connections = []
    for provider in PROVIDERS:
        kind = "client_credentials" if provider == "greenhouse" else "api_key"
        auth = {"kind": kind, "secret": f"env:CANONRY_TEST_AUTH_{provider.upper()}"}
        if provider == "salesforce":  # oauth2 only; the intake needs no token set (never authorised here)
            auth = {"kind": "oauth2", "secret": "local:salesforce-acme-token", "client_id": "canonry",
                    "client_secret": "env:CANONRY_TEST_AUTH_SALESFORCE",
                    "redirect_uri": "http://127.0.0.1:8765/callback"}
        connections.append({"id": f"{provider}-acme", "tenant": "acme", "provider": provider, "auth": auth,
                            "base_url": "http://127.0.0.1:9", "webhooks": webhook_block(provider)})
    config = root / "connections.yml"
    config.write_text(yaml.safe_dump({"connections": connections}, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        server = WebhookServer(config, max_body=MAX_BODY, env=env).start()
    yield server, root / "data"
    log = server.stop()
    # Nothing secret or personal in the server's log: no secret, no body content.
    for secret in SECRETS.values():
        assert secret not in log
    assert "Ada" not in log and "Lovelace" not in log
    # Every line is an acceptance or a refusal by reason code, nothing else (under xdist this worker's
    # server saw only some of the tests below).
    line = re.compile(r"\S+ \S+ (INFO webhook accepted: connection=[a-z-]+ events=\d+ new=\d+|"
                      r"WARNING webhook refused: connection=[a-z<> -]+ status=\d{3} reason=[a-z_]+)")
    assert log.strip() and all(line.fullmatch(entry) for entry in log.strip().splitlines()), log
    # The journal keeps bodies, never a secret or a credential header (Pipedrive's basic auth included).
    stored = b"".join(p.read_bytes() for p in (root / "data" / "webhooks").iterdir())
    assert stored and not [p for p, s in SECRETS.items() if s.encode() in stored]


def _unchanged(data_dir: Path, before: int) -> None:
    assert len(journal_rows(data_dir)) == before, "a refused delivery was journaled"


# -- valid deliveries -----------------------------------------------------------------------------------
def test_each_provider_valid_delivery_is_journaled_once(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    greenhouse = {"action": "delete_candidate", "payload": {"person": {"id": 7, "first_name": "Ada",
                                                                       "deleted_application_ids": [8]}}}
    batch = [hubspot_event("101"), hubspot_event("102", "contact.propertyChange")]
    lever = lever_body("candidateDeleted", {"opportunityId": "opp-1", "deletedBy": "user-1"})
    ashby = {"action": "candidateUpdate", "data": {"candidate": {"id": "c-1", "updatedAt": "2026-01-01T00:00:00Z"}}}
    pipedrive = pipedrive_event("person", "5", "delete", previous={"id": 5, "name": "Ada Lovelace"})
    message = salesforce_message()
    deliveries = [
        lambda: post_greenhouse(server.hook("greenhouse-acme"), greenhouse, event_id="gh-1"),
        lambda: post_hubspot(server.hook("hubspot-acme"), batch),
        lambda: requests.post(server.hook("lever-acme"), json=lever, timeout=10),
        lambda: post_ashby(server.hook("ashby-acme"), ashby),
        lambda: post_pipedrive(server.hook("pipedrive-acme"), pipedrive),
        lambda: post_salesforce(server.hook("salesforce-acme"), message),
    ]
    for send in deliveries:
        response = send()
        assert response.status_code == 200, response.text
    # The provider's retry of each delivery (same event ids) is acknowledged and not journaled again.
    for send in deliveries:
        assert send().status_code == 200
    rows = journal_rows(data_dir)[before:]
    by_provider = {p: [r for r in rows if r["provider"] == p] for p in PROVIDERS}
    assert {p: len(r) for p, r in by_provider.items()} == {"hubspot": 2, "salesforce": 1, "pipedrive": 1,
                                                           "greenhouse": 1, "lever": 1, "ashby": 1}
    assert all(r["state"] == "pending" for r in rows)
    assert by_provider["greenhouse"][0]["event_id"] == "gh-1"
    assert sorted(r["event_id"] for r in by_provider["hubspot"]) == sorted(str(e["eventId"]) for e in batch)
    assert by_provider["lever"][0]["event_id"] == lever["token"]
    sf = json.loads(by_provider["salesforce"][0]["body"])
    assert sf["sobject"] == "Contact" and sf["fields"]["Id"] == "003000000000001"
    # Salesforce gets its SOAP acknowledgement (else it retries for 24 hours).
    ack = post_salesforce(server.hook("salesforce-acme"), salesforce_message())
    assert ack.content == SOAP_ACK and ack.headers["content-type"].startswith("text/xml")


# -- attacks: each refused, nothing written ------------------------------------------------------------
def test_unknown_connection_is_404(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    response = post_greenhouse(server.hook("nobody"), {"action": "ping", "payload": {}})
    assert response.status_code == 404
    _unchanged(data_dir, before)


def test_bad_signature_is_401_without_detail(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    document = {"action": "delete_candidate", "payload": {"person": {"id": 9}}}
    wrong_key = post_greenhouse(server.hook("greenhouse-acme"), document, secret="another-secret")
    tampered = post_greenhouse(server.hook("greenhouse-acme"), document, signature="sha256 " + "0" * 64)
    missing = requests.post(server.hook("greenhouse-acme"), json=document, timeout=10)
    ashby = requests.post(server.hook("ashby-acme"), json={"action": "candidateDelete"}, timeout=10,
                          headers={"Ashby-Signature": "sha256=\u00e9"})
    for response in (wrong_key, tampered, missing, ashby):
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized"}
    _unchanged(data_dir, before)


def test_hubspot_request_outside_the_five_minute_window_is_refused(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    old = int(time.time() * 1000) - 6 * 60 * 1000
    # Correctly signed, but replayed six minutes later.
    assert post_hubspot(server.hook("hubspot-acme"), [hubspot_event("103")], timestamp_ms=old).status_code == 401
    assert post_hubspot(server.hook("hubspot-acme"), [hubspot_event("103")],
                        secret="wrong-secret").status_code == 401
    _unchanged(data_dir, before)


def test_lever_signature_valid_for_another_token_is_refused(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    genuine = lever_body("candidateDeleted", {"opportunityId": "opp-2"})
    forged = {**genuine, "token": "another-token"}  # the signature was made for the genuine token
    assert requests.post(server.hook("lever-acme"), json=forged, timeout=10).status_code == 401
    signed_elsewhere = lever_body("candidateDeleted", {"opportunityId": "opp-2"}, signature_token="not-ours")
    assert requests.post(server.hook("lever-acme"), json=signed_elsewhere, timeout=10).status_code == 401
    _unchanged(data_dir, before)


def test_pipedrive_without_or_with_wrong_basic_auth_is_refused(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    event = pipedrive_event("person", "6", "delete", previous={"id": 6})
    assert post_pipedrive(server.hook("pipedrive-acme"), event, password=None).status_code == 401
    assert post_pipedrive(server.hook("pipedrive-acme"), event, password="wrong").status_code == 401
    assert post_pipedrive(server.hook("pipedrive-acme"), event, user="someone-else").status_code == 401
    _unchanged(data_dir, before)


def test_salesforce_message_from_another_org_is_refused(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    response = post_salesforce(server.hook("salesforce-acme"), salesforce_message(org_id="00D000000000OTHER"))
    assert response.status_code == 403
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">&lol2;</soapenv:Envelope>')
    assert post_salesforce(server.hook("salesforce-acme"), bomb).status_code == 400
    _unchanged(data_dir, before)


def test_ten_megabyte_body_is_refused_unread(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    huge = b'{"action":"update_candidate","payload":{"pad":"' + b"x" * (10 * 1024 * 1024) + b'"}}'
    response = requests.post(server.hook("greenhouse-acme"), data=huge, timeout=30,
                             headers={"Content-Type": "application/json", "Signature": greenhouse_sign(
                                 SECRETS["greenhouse"], huge)})
    assert response.status_code == 413

    def chunks():  # no Content-Length: the cap counts the streamed bytes
        for _ in range(40):
            yield b"x" * 262_144
    streamed = requests.post(server.hook("greenhouse-acme"), data=chunks(), timeout=30)
    assert streamed.status_code == 413
    _unchanged(data_dir, before)


def test_json_bomb_is_refused(intake):
    server, data_dir = intake
    before = len(journal_rows(data_dir))
    for depth in (100, 5000):
        deep = b'{"action":"update_candidate","payload":' + b"[" * depth + b"]" * depth + b"}"
        response = requests.post(server.hook("greenhouse-acme"), data=deep, timeout=10, headers={
            "Signature": greenhouse_sign(SECRETS["greenhouse"], deep)})  # validly signed
        assert response.status_code == 400, depth
    not_an_event = post_greenhouse(server.hook("greenhouse-acme"), {"x": 1})
    assert not_an_event.status_code == 400  # signed, valid JSON, but not an event
    broken = b'{"action": "update_candidate", '
    malformed = requests.post(server.hook("greenhouse-acme"), data=broken, timeout=10,
                              headers={"Signature": greenhouse_sign(SECRETS["greenhouse"], broken)})
    assert malformed.status_code == 400
    _unchanged(data_dir, before)


def test_uninterpretable_event_is_dead_lettered_shown_and_replayable(data_dir, tmp_path, monkeypatch,
                                                                     sandbox_factory, connect_sandbox):
    set_secret_env(monkeypatch)
    sandbox = sandbox_factory("greenhouse", scale=5)
    connect_sandbox(sandbox, "greenhouse-acme", auth={"kind": "client_credentials",
                                                      "secret": "env:CANONRY_TEST_GREENHOUSE_ACME"},
                    webhooks=webhook_block("greenhouse"))
    config = str(tmp_path / "connections.yml")
    server = WebhookServer(tmp_path / "connections.yml").start()
    try:
        # Correctly signed, but an action this version does not know.
        response = post_greenhouse(server.hook("greenhouse-acme"), {"action": "mystery_action", "payload": {}})
        assert response.status_code == 200
    finally:
        server.stop()

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "canonry.cli", "webhooks", *args], capture_output=True,
                              text=True, timeout=120)

    drained = cli("drain", "--no-sync", "--no-build", "--config", config)
    assert drained.returncode == 0, drained.stderr
    assert "1 events: 0 applied, 1 dead-lettered" in drained.stdout
    status = json.loads(cli("status", "--json").stdout)
    assert status == [{"connection_id": "greenhouse-acme", "pending": 0, "applied": 0, "dead": 1,
                       "max_drain_lag_s": None, "oldest_pending_age_s": None,
                       "dead_reasons": ["greenhouse: unknown action 'mystery_action'"]}]
    connect().close()  # an (empty) warehouse: `canonry status` shows the webhook backlog under the connections
    overview = subprocess.run([sys.executable, "-m", "canonry.cli", "status"], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert overview.returncode == 0, overview.stderr
    assert "Webhooks" in overview.stdout and "mystery_action" in overview.stdout
    assert "1 event(s) back to pending" in cli("replay", "greenhouse-acme").stdout
    assert [r["state"] for r in journal_rows(data_dir)] == ["pending"]
    again = cli("drain", "--no-sync", "--no-build", "--config", config)
    assert "1 dead-lettered" in again.stdout


def test_validate_reports_webhook_settings_problems(tmp_path, monkeypatch):
    from canonry.validation import validate_file

    set_secret_env(monkeypatch)
    monkeypatch.setenv("CANONRY_TEST_AUTH", DEFAULT_TOKENS["pipedrive"])
    config = tmp_path / "connections.yml"
    config.write_text(yaml.safe_dump({"connections": [
        {"id": "pipedrive-a", "tenant": "a", "provider": "pipedrive",
         "auth": {"kind": "api_key", "secret": "env:CANONRY_TEST_AUTH"},
         "webhooks": {"secret": "env:CANONRY_TEST_WEBHOOK_PIPEDRIVE"}},          # no username
        {"id": "pipedrive-b", "tenant": "b", "provider": "pipedrive",
         "auth": {"kind": "api_key", "secret": "env:CANONRY_TEST_AUTH"},
         "webhooks": {"username": "canonry", "secret": "hunter2-pasted-value"}},  # a value, not a reference
        {"id": "pipedrive-c", "tenant": "c", "provider": "pipedrive",
         "auth": {"kind": "api_key", "secret": "env:CANONRY_TEST_AUTH"},
         "webhooks": {"username": "canonry", "secret": "env:CANONRY_TEST_UNSET_WEBHOOK"}},
    ]}))
    _, problems = validate_file(config)
    found = {(p.path, p.code) for p in problems}
    assert found == {("connections.0.webhooks", "webhook_setting_missing"),
                     ("connections.1.webhooks.secret", "secret_not_reference"),
                     ("connections.2.webhooks.secret", "secret_unresolved")}
    assert all("hunter2" not in p.render() for p in problems)
