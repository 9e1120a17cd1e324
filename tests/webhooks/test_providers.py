"""The Ashby, Lever and HubSpot sandboxes send their signed webhooks to `canonry webhooks serve`. After one
drain (no sync) and a build, the deletes are in the canonical tables and Ashby's full-record updates equal
the sandbox truth."""

from __future__ import annotations

import json
import socket

from canonry.pipeline import sync
from canonry.transform import run_dbt
from canonry.webhooks.drain import drain
from tests.helpers import canonical, mutate, query, truth
from tests.webhooks.helpers import WebhookServer, journal_rows, set_secret_env, wait_for, webhook_block

MODELS = ["+ats_candidates", "+ats_applications", "+crm_contacts"]


def test_ashby_lever_and_hubspot_events_reach_canonical_without_a_sync(data_dir, sandbox_factory, connect_sandbox,
                                                                       tmp_path, monkeypatch):
    set_secret_env(monkeypatch)
    sandboxes = {slug: sandbox_factory(slug, scale=20) for slug in ("ashby", "lever", "hubspot")}
    connections = {slug: connect_sandbox(server, f"{slug}-acme", webhooks=webhook_block(slug))
                   for slug, server in sandboxes.items()}
    for connection in connections.values():
        outcome = sync(connection)
        assert outcome.status == "success", outcome.error

    intake = WebhookServer(tmp_path / "connections.yml").start()
    try:
        for slug, sandbox in sandboxes.items():
            sandbox.state.webhook_url = intake.hook(connections[slug].id)
        ashby_changes = mutate(sandboxes["ashby"], "candidates", update=2, delete=1, seed=4)
        lever_deleted = mutate(sandboxes["lever"], "opportunities", delete=2, seed=4)["delete"]
        hubspot_deleted = mutate(sandboxes["hubspot"], "contacts", delete=2, seed=4)["delete"]
        hubspot_sent = sandboxes["hubspot"].simulator.webhooks.deliveries
        wait_for(lambda: len(hubspot_sent) == 1 and hubspot_sent[0]["status"] == 200)
        assert hubspot_sent[0]["attempts"] == 1 and len(hubspot_sent[0]["events"]) == 2
        ashby_sent = sandboxes["ashby"].simulator.webhooks_sent
        wait_for(lambda: len(ashby_sent) == 3 and all(d["status"] == 200 for d in ashby_sent))
        lever_sent = sandboxes["lever"].simulator.webhooks_sent
        assert len(lever_sent) == 2
    finally:
        log = intake.stop()
    assert log.count("webhook accepted: connection=lever-acme") == 2, log

    result = drain(_model(tmp_path), run_syncs=False, run_build=False)
    assert result.errors == [] and result.dead == 0
    assert (result.events, result.applied) == (7, 7)
    assert result.rows == {"raw_ashby.candidates": 3, "raw_lever.opportunities": 2, "raw_hubspot.contacts": 2}
    build = run_dbt(["build", "--select", *MODELS, "--exclude-resource-type", "test"])
    assert build.success, (build.error, build.failures())

    ashby = canonical("ats_candidates", "ashby")
    assert ashby[ashby_changes["delete"][0]]["is_deleted"]
    ashby_truth = {r["id"]: r["record"] for r in truth(sandboxes["ashby"], "candidates")}
    for remote_id in ashby_changes["update"]:
        assert not ashby[remote_id]["is_deleted"]
        assert ashby[remote_id]["remote_updated_at"].isoformat().replace("+00:00", "Z")[:19] == \
            ashby_truth[remote_id]["updatedAt"][:19]
    lever = canonical("ats_applications", "lever")
    assert all(lever[i]["is_deleted"] for i in lever_deleted)
    hubspot = canonical("crm_contacts", "hubspot")
    assert all(hubspot[i]["is_deleted"] for i in hubspot_deleted)


def _model(tmp_path):
    from canonry.validation import load_connections

    return load_connections(tmp_path / "connections.yml", require_tokens=False, builds_canonical=False)


def test_hubspot_sandbox_retries_until_the_intake_is_back(data_dir, sandbox_factory, connect_sandbox, tmp_path,
                                                           monkeypatch):
    """The intake is down when HubSpot sends: HubSpot retries with back-off, the intake comes back on the
    same address, the batch is journaled once."""
    set_secret_env(monkeypatch)
    sandbox = sandbox_factory("hubspot", scale=20)
    connection = connect_sandbox(sandbox, "hubspot-acme", webhooks=webhook_block("hubspot"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox.state.webhook_url = f"http://127.0.0.1:{port}/hooks/{connection.id}"
    updated = mutate(sandbox, "contacts", update=3, seed=2)["update"]
    sent = sandbox.simulator.webhooks.deliveries
    wait_for(lambda: sent and isinstance(sent[0]["status"], str) and sent[0]["attempts"] >= 2)
    intake = WebhookServer(tmp_path / "connections.yml", port=port).start()
    try:
        wait_for(lambda: sent[0]["status"] == 200)
    finally:
        intake.stop()
    assert sent[0]["attempts"] >= 3
    rows = journal_rows(data_dir)
    assert sorted(json.loads(r["body"])["objectId"] for r in rows) == sorted(int(i) for i in updated)
    assert {json.loads(r["body"])["subscriptionType"] for r in rows} == {"contact.propertyChange"}


def test_salesforce_outbound_messages_trigger_one_sync(data_dir, sandbox_factory, connect_sandbox, tmp_path,
                                                       monkeypatch):
    """The Salesforce sandbox sends Outbound Messages (SOAP, its org id) for updated contacts; the intake
    acknowledges them in SOAP; the drain reads the records whole through one incremental sync."""
    from tests.sources.test_salesforce import oauth_connection

    set_secret_env(monkeypatch)
    sandbox = sandbox_factory("salesforce", scale=20)
    connection = oauth_connection(sandbox, connect_sandbox, monkeypatch, "salesforce-acme", objects=["contacts"],
                                  webhooks=webhook_block("salesforce"))
    assert sync(connection).status == "success"
    intake = WebhookServer(tmp_path / "connections.yml").start()
    try:
        sandbox.state.webhook_url = intake.hook(connection.id)
        updated = mutate(sandbox, "Contact", update=2, seed=6)["update"]
        sent = sandbox.simulator.webhooks.deliveries
        wait_for(lambda: len(sent) == 1 and sent[0]["status"] == 200)
    finally:
        intake.stop()
    assert sent[0]["attempts"] == 1 and sent[0]["records"] == 2
    assert sorted(json.loads(r["body"])["fields"]["Id"] for r in journal_rows(data_dir)) == sorted(updated)

    result = drain(_model(tmp_path), run_build=False)
    assert (result.events, result.applied, result.synced, result.errors) == (2, 2, {connection.id: "success"}, [])
    titles = {r["id"]: r["record"]["Title"] for r in truth(sandbox, "Contact")}
    raw = {row["remote_id"]: row["title"] for row in query(
        "select remote_id, json_extract_string(payload, '$.Title') as title from raw_salesforce.contacts "
        "qualify row_number() over (partition by remote_id order by remote_updated_at desc) = 1")}
    assert all(raw[i] == titles[i] and titles[i].startswith("updated") for i in updated)
