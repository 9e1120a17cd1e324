"""Reverse ETL end to end: canonical lead scores (a dbt model over canonical tables) pushed into HubSpot,
Salesforce and Pipedrive sandboxes over real HTTP, gated by dbt tests and GE suites.

The tests share one warehouse (tests/reverse_etl/conftest.py) and run in file order: first pushes with
per-record rejections (HubSpot, Salesforce), a first push killed mid-run (Pipedrive), then 10 changed rows
per CRM, then a failing GE suite blocking the push in the CLI and in Dagster.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from typer.testing import CliRunner

from canonry.cli import app
from canonry.reverse_etl import PushRefused, plan, push
from canonry.warehouse import PROJECT_ROOT
from tests.helpers import query
from tests.reverse_etl.conftest import (
    MODELS,
    SCORE_COLUMN,
    clear_rejections,
    clear_write_log,
    model_scores,
    provider_scores,
    reject_writes,
    write_log,
    write_requests,
)


def _assert_sandbox_equals_model(world, slug: str) -> None:
    desired = model_scores(slug)
    held = provider_scores(world.servers[slug], slug)
    assert desired and set(desired) <= set(held)
    mismatched = {i: (score, held.get(i)) for i, score in desired.items() if held.get(i) != score}
    assert not mismatched, f"{slug}: sandbox differs from the model for {len(mismatched)} records: " \
                           f"{list(mismatched.items())[:5]}"


def test_staged_write_back_shadow_logs_and_a_paused_connection_writes_nothing(world):
    """Staged write-back (docs/ROLLOUTS.md): a shadow push logs what it would write and writes nothing (the
    next push plans the same); a paused connection is left out, the skip recorded with the reason."""
    from canonry.rollout.pause import pause, resume

    server, model = world.servers["hubspot"], MODELS["hubspot"]
    clear_write_log(server, "hubspot")
    planned = plan(model).counts()
    result = push(model, world.verdicts[model], connections=world.connections, shadow=True)
    [outcome] = result.connections
    assert outcome.status == "shadow" and result.success and sum(planned.values()) > 0
    logged = query("select count(*) as n from ops.push_log where run_id = ? and status = 'shadow'", [outcome.run_id])
    assert logged[0]["n"] == sum(planned.values()) and write_log(server, "hubspot") == []
    assert plan(model).counts() == planned
    pause("hubspot-acme", reason="CRM freeze")
    try:
        held = push(model, world.verdicts[model], connections=world.connections, limit=1)
        assert [c.status for c in held.connections] == ["paused"] and write_log(server, "hubspot") == []
        skips = query("select reason from ops.pause_skips where skipped_by = 'canonry push rev_hubspot__contacts'")
        assert [s["reason"] for s in skips] == ["CRM freeze"]
    finally:
        resume("hubspot-acme")
    assert plan(model).counts() == planned


@pytest.mark.parametrize("slug", ["hubspot", "salesforce"])
def test_first_push_with_three_rejections_then_retry_only_those(world, slug):
    server, model = world.servers[slug], MODELS[slug]
    total = len(model_scores(slug))
    # The contacts exist in the CRM (the model carries their ids): a first push is updates, not creates.
    assert plan(model).counts() == {"inserts": 0, "updates": total, "deletes": 0}
    rejected_ids = sorted(model_scores(slug))[10:13]
    reject_writes(server, slug, rejected_ids, "Lead score is locked by a validation rule")

    result = push(model, world.verdicts[model], connections=world.connections)
    (outcome,) = result.connections
    assert (outcome.status, outcome.updates, outcome.written, outcome.rejected) == ("partial", total, total - 3, 3)
    # One batch (HubSpot ≤ 100, Salesforce ≤ 200 per call) carried every record.
    assert total <= 100
    writes = write_requests(server)
    assert len(writes) == 1, writes
    rows = query("select provider_id, status, message, idempotency_key from ops.push_log "
                 "where model = ? and status = 'rejected'", [model])
    assert sorted(r["provider_id"] for r in rows) == rejected_ids
    assert all("Lead score is locked" in r["message"] for r in rows)
    assert all(len(r["idempotency_key"]) == 24 for r in rows)
    held = provider_scores(server, slug)
    desired = model_scores(slug)
    assert all(held[i] is None for i in rejected_ids)
    assert all(held[i] == desired[i] for i in desired if i not in rejected_ids)

    # The next run retries exactly the three (the provider accepts them now).
    clear_rejections(server, slug)
    clear_write_log(server, slug)
    result = push(model, world.verdicts[model], connections=world.connections)
    (outcome,) = result.connections
    assert (outcome.status, outcome.inserts, outcome.updates, outcome.written) == ("success", 0, 3, 3)
    assert sorted(w["id"] for w in write_log(server, slug)) == rejected_ids
    _assert_sandbox_equals_model(world, slug)

    # Nothing changed: a third push sends nothing at all.
    clear_write_log(server, slug)
    requests.delete(f"{server.base_url}/_sandbox/requests", timeout=30)
    result = push(model, world.verdicts[model], connections=world.connections)
    assert (result.connections[0].written, result.connections[0].calls) == (0, 0)
    assert write_log(server, slug) == [] and write_requests(server) == []


def test_push_killed_mid_run_then_rerun_writes_each_record_once(world):
    """`canonry push` in its own process, killed (SIGKILL) while writing; the re-run settles the batch that
    was in flight by reading it back, and the sandbox's write log shows every record written exactly once."""
    slug, model = "pipedrive", MODELS["pipedrive"]
    server = world.servers[slug]
    clear_write_log(server, slug)
    requests.post(f"{server.base_url}/_sandbox/faults", json={"latency_ms": 60}, timeout=30).raise_for_status()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "canonry.cli", "push", model, "--batch-size", "7"],
                               cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300   # the subprocess builds and gates first: slow on a loaded machine
        while len(write_log(server, slug)) < 18:
            assert process.poll() is None, process.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the push never started writing"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    requests.post(f"{server.base_url}/_sandbox/faults", json={}, timeout=30).raise_for_status()
    before = write_log(server, slug)
    total = len(model_scores(slug))
    assert 18 <= len(before) < total
    in_flight = query("select count(*) as n from ops.push_log where model = ? and status = 'in_flight'", [model])
    assert in_flight[0]["n"] > 0

    result = push(model, world.verdicts[model], connections=world.connections)
    (outcome,) = result.connections
    assert outcome.status == "success", outcome.error
    after = write_log(server, slug)
    per_record = collections.Counter(w["id"] for w in after)
    assert set(per_record) == set(model_scores(slug)), "a record was missed"
    assert max(per_record.values()) == 1, [i for i, n in per_record.items() if n > 1]
    assert outcome.written == total - len(before)   # the rest, and nothing already there
    _assert_sandbox_equals_model(world, slug)
    # And again: nothing to do.
    assert push(model, world.verdicts[model], connections=world.connections).connections[0].written == 0
    assert len(write_log(server, slug)) == total


def _remove_phones(world, slug: str, ids: list[str]) -> None:
    """Edit the contacts at the provider (its own write API): the phone bonus of their score goes away."""
    server = world.servers[slug]
    for remote_id in ids:
        if slug == "hubspot":
            answer = requests.patch(f"{server.base_url}/crm/v3/objects/contacts/{remote_id}",
                                    json={"properties": {"phone": ""}}, timeout=30,
                                    headers={"Authorization": f"Bearer {os.environ['RETL_HUBSPOT_TOKEN']}"})
        elif slug == "salesforce":
            answer = requests.patch(f"{server.base_url}/services/data/v62.0/sobjects/Contact/{remote_id}",
                                    json={"Phone": None, "MobilePhone": None}, timeout=30,
                                    headers={"Authorization": f"Bearer {world.salesforce_token}"})
        else:
            answer = requests.patch(f"{server.base_url}/api/v2/persons/{remote_id}", json={"phones": []},
                                    headers={"x-api-token": os.environ["RETL_PIPEDRIVE_TOKEN"]}, timeout=30)
        assert answer.status_code < 300, answer.text


def test_ten_changed_rows_make_exactly_ten_writes(world):
    changed = {}
    for slug, model in MODELS.items():
        assert plan(model).counts() == {"inserts": 0, "updates": 0, "deletes": 0}, slug
        rows = query(f'select r.external_id from reverse_etl.{model} r join canonical.crm_contacts c '
                     f'on c.contact_id = r.record_key where json_array_length(c.phones) > 0 '
                     f'and r."{SCORE_COLUMN[slug]}" between 10 and 99 order by r.external_id limit 10')
        changed[slug] = sorted(str(r["external_id"]) for r in rows)
        assert len(changed[slug]) == 10
        _remove_phones(world, slug, changed[slug])
    world.resync_and_gate()   # sync the edits, rebuild canonical + models, validate
    for slug, model in MODELS.items():
        server = world.servers[slug]
        clear_write_log(server, slug)
        assert plan(model).counts() == {"inserts": 0, "updates": 10, "deletes": 0}, slug
        result = push(model, world.verdicts[model], connections=world.connections)
        assert (result.connections[0].updates, result.connections[0].written) == (10, 10), slug
        assert sorted(w["id"] for w in write_log(server, slug)) == changed[slug], slug
        _assert_sandbox_equals_model(world, slug)


def test_write_back_must_be_enabled(world, tmp_path, monkeypatch):
    import yaml

    from canonry.validation import load_connections

    data = yaml.safe_load(world.config_path.read_text())
    for entry in data["connections"]:
        entry["write_back"] = {"enabled": False}
    path = tmp_path / "no-write.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PushRefused, match="write-back is not enabled on connection hubspot-acme"):
        push(MODELS["hubspot"], world.verdicts[MODELS["hubspot"]], connections=load_connections(path))
    dry = CliRunner().invoke(app, ["push", MODELS["hubspot"], "--dry-run", "--config", str(world.config_path)])
    assert dry.exit_code == 0, dry.output
    assert "would insert 0, update 0, delete 0" in dry.output


def test_failing_ge_suite_blocks_the_push_in_cli_and_dagster(world, monkeypatch):
    slug, model = "hubspot", MODELS["hubspot"]
    server = world.servers[slug]
    victim = sorted(model_scores(slug))[0]
    answer = requests.patch(f"{server.base_url}/crm/v3/objects/contacts/{victim}",
                            json={"properties": {"email": "not-an-email", "phone": "+1 555 0100"}}, timeout=30,
                            headers={"Authorization": f"Bearer {os.environ['RETL_HUBSPOT_TOKEN']}"})
    assert answer.status_code == 200, answer.text
    from canonry.pipeline import sync

    assert sync(world.connections.get("hubspot-acme")).status == "success"
    clear_write_log(server, slug)

    result = CliRunner().invoke(app, ["push", model, "--config", str(world.config_path)])
    assert result.exit_code == 1, result.output
    assert "push blocked" in result.output
    assert "GE canonical.crm_contacts: ExpectColumnValuesToMatchRegex(email) failed" in result.output
    assert write_log(server, slug) == []

    # Dagster: the push asset sits downstream of the blocking GE checks of the canonical tables it reads.
    from dagster import AssetKey, materialize

    from tests.dagster.test_definitions import _load_definitions

    module = _load_definitions(monkeypatch, world.config_path)
    push_assets = [a for a in module.REVERSE_ETL if AssetKey(["push", model]) in a.keys]
    assert push_assets, "no push asset for the model"
    graph = module.defs.resolve_asset_graph()
    lineage = graph.get(AssetKey(["push", model])).parent_keys
    assert AssetKey(["canonical", "crm_contacts"]) in lineage and lineage <= module.canonry_dbt_assets.keys
    # The push's own lineage (the model and the canonical tables it reads, as its sync job selects), not
    # every dbt model: the blocking GE check comes with canonical/crm_contacts either way.
    run = materialize([module.canonry_dbt_assets, *module.CHECKS, *push_assets],
                      resources={"dbt": module.dbt_resource()}, raise_on_error=False,
                      selection=[*lineage, AssetKey(["push", model])], partition_key="hubspot-acme")
    failed = [e for e in run.get_asset_check_evaluations() if not e.passed]
    assert any(e.check_name == "ge_crm_contacts" and "ExpectColumnValuesToMatchRegex(email)"
               in str(e.metadata.get("failed").value) for e in failed), failed
    materialized = {e.asset_key for e in run.get_asset_materialization_events()}
    assert AssetKey(["canonical", "crm_contacts"]) in materialized
    assert AssetKey(["push", model]) not in materialized
    assert write_log(server, slug) == []
