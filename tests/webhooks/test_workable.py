"""Workable webhooks end to end without a build: `canonry webhooks register` subscribes the intake through
Workable's API (`POST /spi/v3/subscriptions`, both candidate events), the sandbox then signs its deliveries
with the account token, the intake journals them (a forged one is refused), and one drain writes each
delivered candidate into raw as the full record — the sandbox's current state, no API call."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from canonry.pipeline import sync
from canonry.webhooks.drain import drain
from tests.helpers import mutate, query, truth
from tests.webhooks.helpers import WebhookServer, wait_for


def test_workable_register_deliver_journal_and_drain(data_dir, sandbox_factory, connect_sandbox, tmp_path):
    server = sandbox_factory("workable", scale=10)
    # Workable signs with the account token: the webhook secret names the connection's own token.
    connection = connect_sandbox(server, "workable-acme", webhooks={"secret": "env:CANONRY_TEST_WORKABLE_ACME"})
    assert sync(connection).status == "success"
    config = tmp_path / "connections.yml"
    intake = WebhookServer(config).start()
    try:
        registered = subprocess.run([sys.executable, "-m", "canonry.cli", "webhooks", "register", "-c",
                                     "workable-acme", "--url", intake.hook("workable-acme"), "--config", str(config)],
                                    capture_output=True, text=True, timeout=120)
        assert registered.returncode == 0, registered.stdout + registered.stderr
        subscriptions = server.simulator.subscriptions
        assert sorted(s["event"] for s in subscriptions.values()) == ["candidate_created", "candidate_moved"]

        forged = requests.post(intake.hook("workable-acme"), data=b'{"id":"x","event_type":"candidate_moved",'
                               b'"data":{"id":"1"}}', headers={"X-Workable-Signature": "0" * 64}, timeout=30)
        assert forged.status_code == 401

        changed = mutate(server, "candidates", create=1, update=2, seed=5)
        sent = server.simulator.webhook_sender.deliveries
        wait_for(lambda: len(sent) == 3 and all(d["status"] == 200 for d in sent))
        assert sorted(d["event"] for d in sent) == ["candidate_created", "candidate_moved", "candidate_moved"]
    finally:
        intake.stop()

    from canonry.validation import load_connections

    requests.delete(f"{server.base_url}/_sandbox/requests", timeout=30).raise_for_status()
    result = drain(load_connections(config, require_tokens=False), run_syncs=False, run_build=False)
    assert result.errors == [] and result.dead == 0 and (result.events, result.applied) == (3, 3)
    assert result.rows == {"raw_workable.candidates": 3}
    api_calls = [r for r in requests.get(f"{server.base_url}/_sandbox/requests", timeout=30).json()["requests"]
                 if not r["path"].startswith("/_sandbox")]
    assert api_calls == []  # the events carried the whole candidate

    latest = {r["remote_id"]: json.loads(r["payload"]) for r in query(
        "select remote_id, arg_max(payload, remote_updated_at) as payload from raw_workable.candidates "
        "group by remote_id")}
    expected = {r["id"]: r["record"] for r in truth(server, "candidates")}
    for remote_id in [*changed["create"], *changed["update"]]:
        assert latest[remote_id]["stage"] == expected[remote_id]["stage"]
        assert latest[remote_id]["updated_at"] == expected[remote_id]["updated_at"]
