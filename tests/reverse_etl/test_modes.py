"""Declarative syncs end to end (reverse_etl/<name>.yml), against the CRM sandboxes over real HTTP.

Runs before test_push.py in the shared world (conftest.py): every shipped sync pushes cleanly and then has
nothing to do; per CRM, each mode (update, upsert, insert, mirror) on the accounts object — the sandbox
equals the model for the mapped fields, k changed rows make k writes carrying only the changed field, rows
leaving the model are deleted by mirror only, dry-run counts equal the real run; natural-key matching;
duplicate keys refused before any write; rejected rows retried then parked and released; `canonry validate`
errors with file:line. Changes to the model are made in the built table (the warehouse), then restored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
import yaml
from typer.testing import CliRunner

from canonry.cli import app
from canonry.reverse_etl import push
from canonry.warehouse import PROJECT_ROOT
from canonry.writeback import comparable
from tests.helpers import execute, query
from tests.reverse_etl.conftest import clear_write_log, write_requests

SHIPPED = PROJECT_ROOT / "reverse_etl"
TRUTH = {("hubspot", "companies"): "companies", ("hubspot", "deals"): "deals", ("hubspot", "contacts"): "contacts",
         ("salesforce", "accounts"): "Account", ("salesforce", "opportunities"): "Opportunity",
         ("salesforce", "leads"): "Lead", ("pipedrive", "organizations"): "organizations",
         ("pipedrive", "deals"): "deals"}
ACCOUNTS = {"hubspot": ("rev_hubspot__companies", "companies", "name"),
            "salesforce": ("rev_salesforce__accounts", "accounts", "Name"),
            "pipedrive": ("rev_pipedrive__organizations", "organizations", "name")}


# -- helpers ------------------------------------------------------------------------------------------
def truth(world, provider: str, object_name: str) -> dict[str, dict]:
    """record id -> its fields as the sandbox holds them (alive records only)."""
    server = world.servers[provider]
    records = requests.get(f"{server.base_url}/_sandbox/truth/{TRUTH[(provider, object_name)]}",
                           timeout=30).json()["records"]
    out = {}
    for item in records:
        if not item["deleted"]:
            body = item["record"]
            out[str(item["id"])] = body.get("properties", body) if provider == "hubspot" else body
    return out


def model_rows(model: str) -> list[dict]:
    return query(f'select * from reverse_etl."{model}" order by record_key')


def writes(world, provider: str) -> list[dict]:
    return requests.get(f"{world.servers[provider].base_url}/_sandbox/{provider}/writes",
                        timeout=30).json()["writes"]


def write_sync(name: str, body: dict) -> Path:
    path = Path(os.environ["CANONRY_SYNCS_DIR"]) / f"{name}.yml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def pushed(world, name: str, model: str, **kwargs):
    """A dry run, then the real push; the dry run's counts must be what the real run does."""
    dry = push(name, None, connections=world.connections, dry_run=True, **kwargs)
    real = push(name, world.verdicts[model], connections=world.connections, **kwargs)
    for d, r in zip(dry.connections, real.connections, strict=True):
        assert (d.inserts, d.updates, d.deletes, d.unchanged) == (r.inserts, r.updates, r.deletes, r.unchanged)
        assert r.status == "success", (r.error, r.rejections[:3], r.data_errors[:3])
        assert r.written == r.inserts + r.updates + r.deletes
    return real.connections[0] if real.connections else None


def assert_truth_equals_model(world, provider: str, object_name: str, model: str, fields: dict[str, str],
                              name: str) -> None:
    held = truth(world, provider, object_name)
    ids = {r["record_key"]: r["provider_id"] for r in query(
        "select record_key, provider_id from ops.push_state where model = ?", [name])}
    rows = model_rows(model)
    assert rows
    for row in rows:
        record = held.get(str(ids.get(row["record_key"]) or row["external_id"]))
        assert record is not None, f"{row['record_key']} not in the sandbox"
        for column, crm_field in fields.items():
            want, got = comparable(row[column]), comparable(record.get(crm_field))
            if crm_field in ("closedate", "CloseDate", "expected_close_date") and want and got:
                want, got = want[:10], got[:10]
            assert want == got, (provider, object_name, row["record_key"], crm_field, want, got)


# -- shipped syncs ------------------------------------------------------------------------------------
def test_shipped_syncs_validate_and_push_cleanly_then_have_nothing_to_do(world, monkeypatch):
    monkeypatch.setenv("CANONRY_SYNCS_DIR", str(SHIPPED))
    result = CliRunner().invoke(app, ["validate", "--config", str(world.config_path)])
    assert result.exit_code == 0, result.output
    for path in sorted(SHIPPED.glob("*.yml")):
        spec = yaml.safe_load(path.read_text())
        provider, object_name = spec["destination"]["provider"], spec["destination"]["object"]
        if spec["model"].endswith("_from_hires"):
            continue   # no ATS in this world yet: test_write_by_key.py adds one and pushes them
        first = pushed(world, path.stem, spec["model"])
        assert first.written > 0, path.stem
        assert_truth_equals_model(world, provider, object_name, spec["model"], spec["fields"], path.stem)
        second = push(path.stem, world.verdicts[spec["model"]], connections=world.connections).connections[0]
        assert (second.written, second.calls, second.unchanged) == (0, 0, first.written), path.stem


# -- every mode, per CRM --------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["hubspot", "salesforce", "pipedrive"])
def test_every_mode_on_accounts(world, provider):
    model, object_name, name_field = ACCOUNTS[provider]
    fields = {"name": name_field}
    execute(f'create or replace table reverse_etl."{model}__saved" as select * from reverse_etl."{model}"')
    try:
        _every_mode(world, provider, model, object_name, fields)
    finally:
        execute(f'create or replace table reverse_etl."{model}" as select * from reverse_etl."{model}__saved"')
        execute(f'drop table reverse_etl."{model}__saved"')


def _every_mode(world, provider, model, object_name, fields):
    total = len(model_rows(model))
    syncs = {}
    for mode in ("update", "upsert", "insert", "mirror"):
        syncs[mode] = f"{provider}_accounts_{mode}"
        write_sync(syncs[mode], {"model": model, "destination": {"provider": provider, "object": object_name},
                                 "mode": mode, "fields": fields,
                                 **({"on_delete": "delete"} if mode == "mirror" else {})})
    # Two rows the CRM does not have yet, per mode that creates (each sync creates its own).
    for mode in ("upsert", "insert", "mirror", "update"):
        execute(f'insert into reverse_etl."{model}" (record_key, connection_id, external_id, name) '
                f"values (?, ?, null, ?), (?, ?, null, ?)",
                [f"new-{mode}-1", f"{provider}-acme", f"New {mode} one", f"new-{mode}-2", f"{provider}-acme",
                 f"New {mode} two"])
    first = {mode: pushed(world, syncs[mode], model) for mode in syncs}
    assert (first["update"].updates, first["update"].inserts, first["update"].skipped) == (total, 0, 8)
    assert (first["upsert"].updates, first["upsert"].inserts) == (total, 8)   # every row without a CRM id
    assert (first["insert"].inserts, first["insert"].updates, first["insert"].skipped) == (8, 0, total)
    assert (first["mirror"].updates, first["mirror"].inserts) == (total, 8)
    for mode in ("upsert", "mirror"):
        assert_truth_equals_model(world, provider, object_name, model, fields, syncs[mode])
    created = {r["record_key"]: r["provider_id"] for r in query(
        "select record_key, provider_id from ops.push_state where model = ? and record_key like 'new-%'",
        [syncs["insert"]])}
    assert len(created) == 8 and all(created.values())

    # Nothing changed: no call at all, in any mode.
    requests.delete(f"{world.servers[provider].base_url}/_sandbox/requests", timeout=30)
    for mode, name in syncs.items():
        again = push(name, world.verdicts[model], connections=world.connections).connections[0]
        assert (again.written, again.calls) == (0, 0), mode

    # k = 3 rows change in the warehouse: 3 writes per updating mode, each with only the changed field.
    keys = [r["record_key"] for r in model_rows(model) if r["external_id"]][:3]
    execute(f"update reverse_etl.\"{model}\" set name = name || ' (renamed)' "
            f"where record_key in ({', '.join('?' * len(keys))})", keys)
    for mode in ("update", "upsert", "mirror"):
        clear_write_log(world.servers[provider], provider)
        outcome = pushed(world, syncs[mode], model)
        assert (outcome.updates, outcome.inserts, outcome.deletes, outcome.written) == (3, 0, 0, 3), mode
        assert_changed_only(world, provider, object_name, fields, expected=3)
    insert_only = push(syncs["insert"], world.verdicts[model], connections=world.connections).connections[0]
    assert (insert_only.written, insert_only.calls) == (0, 0)

    # k = 2 rows leave the model: mirror deletes exactly those 2; the other modes touch nothing.
    gone = [r for r in model_rows(model) if r["external_id"]][-2:]
    execute(f"delete from reverse_etl.\"{model}\" where record_key in (?, ?)", [g["record_key"] for g in gone])
    for mode in ("update", "upsert", "insert"):
        outcome = push(syncs[mode], world.verdicts[model], connections=world.connections).connections[0]
        assert (outcome.deletes, outcome.written, outcome.calls) == (0, 0, 0), mode
    before = truth(world, provider, object_name)
    outcome = pushed(world, syncs["mirror"], model)
    assert (outcome.deletes, outcome.written) == (2, 2)
    after = truth(world, provider, object_name)
    assert set(before) - set(after) == {str(g["external_id"]) for g in gone}


def assert_changed_only(world, provider: str, object_name: str, fields: dict, expected: int) -> None:
    """The sandbox's write log: `expected` records written, each carrying only the changed name field."""
    log = writes(world, provider)
    if provider == "hubspot":
        bodies = [w["properties"] for w in log if w["object"] == "companies" and w["success"]]
    elif provider == "salesforce":
        bodies = [{k: v for k, v in (w["fields"] or {}).items() if k not in ("Id", "attributes")}
                  for w in log if w["object"] == "Account" and w["success"]]
    else:
        bodies = [w["body"] for w in log if w["object"] == object_name and w["status"] < 300]
    assert len(bodies) == expected, log[-5:]
    assert all(set(b) == set(fields.values()) for b in bodies), bodies


# -- natural key, duplicates, data errors, limit, only-ids ---------------------------------------------
def test_natural_key_updates_the_existing_contact_and_duplicate_keys_are_data_errors(world):
    model = "rev_hubspot__contacts_from_hires"
    contacts = truth(world, "hubspot", "contacts")
    existing_id, existing = next((i, c) for i, c in contacts.items() if c.get("email"))
    execute(f'delete from reverse_etl."{model}"')
    columns = '(record_key, connection_id, email, first_name, last_name, job_title)'
    execute(f'insert into reverse_etl."{model}" {columns} values (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)',
            ["cand-1", "hubspot-acme", existing["email"].upper(), "Ada", "Lovelace", "Analyst",
             "cand-2", "hubspot-acme", "new.hire@example.com", "Grace", "Hopper", "Engineer"])
    before = len(contacts)
    write_sync("hubspot_contacts_from_hires_test",
               yaml.safe_load((SHIPPED / "hubspot_contacts_from_hires.yml").read_text()))
    outcome = pushed(world, "hubspot_contacts_from_hires_test", model)
    assert (outcome.inserts, outcome.written) == (2, 2)
    after = truth(world, "hubspot", "contacts")
    assert len(after) == before + 1, "the contact with the same email was duplicated"
    assert after[existing_id]["jobtitle"] == "Analyst" and after[existing_id]["firstname"] == "Ada"
    created = query("select provider_id from ops.push_state where model = ? and record_key = 'cand-2'",
                    ["hubspot_contacts_from_hires_test"])[0]["provider_id"]
    assert created in set(after) - set(contacts)

    # Two rows with one email: both are data errors (neither is guessed right), the rest is pushed.
    execute(f'insert into reverse_etl."{model}" {columns} values (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)',
            ["cand-3", "hubspot-acme", "NEW.HIRE@example.com", "Grace", "Again", "Engineer",
             "cand-4", "hubspot-acme", "another.hire@example.com", "Alan", "Turing", "Engineer"])
    requests.delete(f"{world.servers['hubspot'].base_url}/_sandbox/requests", timeout=30)
    dry = push("hubspot_contacts_from_hires_test", None, connections=world.connections, dry_run=True).connections[0]
    outcome = push("hubspot_contacts_from_hires_test", world.verdicts[model], connections=world.connections).connections[0]
    assert (dry.inserts, outcome.inserts, outcome.written, outcome.status) == (1, 1, 1, "partial")
    assert sorted(e["record_key"] for e in outcome.data_errors) == ["cand-2", "cand-3"]
    assert all("2 rows of rev_hubspot__contacts_from_hires have the email 'new.hire@example.com'" in e["message"]
               for e in outcome.data_errors), outcome.data_errors
    logged = query("select record_key from ops.push_log where model = ? and status = 'data_error' order by 1",
                   ["hubspot_contacts_from_hires_test"])
    assert [r["record_key"] for r in logged] == ["cand-2", "cand-3"]
    log = requests.get(f"{world.servers['hubspot'].base_url}/_sandbox/requests", timeout=30).json()["requests"]
    upserts = [r for r in log if r["method"] == "POST" and r["path"].endswith("/batch/upsert")]
    assert len(upserts) == 1
    after_all = truth(world, "hubspot", "contacts")
    (turing,) = [i for i, c in after_all.items() if c.get("email") == "another.hire@example.com"]
    assert [i for i, c in after_all.items() if c.get("email") == "new.hire@example.com"] == [created]
    # test_push.py counts HubSpot contacts after a resync: take the created one away again (never synced).
    archive = requests.post(f"{world.servers['hubspot'].base_url}/crm/v3/objects/contacts/batch/archive",
                            json={"inputs": [{"id": created}, {"id": turing}]}, timeout=30,
                            headers={"Authorization": f"Bearer {os.environ['RETL_HUBSPOT_TOKEN']}"})
    assert archive.status_code == 204, archive.text


def test_bad_values_are_data_errors_and_limit_only_ids_push_a_subset(world):
    model = "rev_salesforce__accounts"
    name = "salesforce_accounts_canary"
    write_sync(name, {"model": model, "destination": {"provider": "salesforce", "object": "accounts"},
                      "mode": "update", "fields": {"name": "Name", "website": "Website"}})
    push(name, world.verdicts[model], connections=world.connections)
    rows = [r for r in model_rows(model) if r["external_id"]][:4]
    keys = {r["record_key"] for r in rows}
    execute(f'create or replace table reverse_etl."{model}__saved" as select * from reverse_etl."{model}"')
    try:
        execute(f"update reverse_etl.\"{model}\" set website = 'https://canary.example/' || record_key "
                f"where record_key in (?, ?, ?)", [r["record_key"] for r in rows[:3]])
        execute(f"update reverse_etl.\"{model}\" set name = ? where record_key = ?", ["x" * 300, rows[3]["record_key"]])
        dry = push(name, None, connections=world.connections, dry_run=True, only_ids=keys)
        (c,) = dry.connections
        assert (c.updates, len(c.data_errors)) == (3, 1)
        assert "Name: 300 characters, the field holds at most 255" in c.data_errors[0]["message"]
        assert all(set(s["changes"]) == {"Website"} for s in dry.sample)
        assert all(s["changes"]["Website"]["after"].startswith("https://canary.example/") for s in dry.sample)
        limited = push(name, world.verdicts[model], connections=world.connections, limit=1,
                       only_ids=keys).connections[0]
        assert (limited.written, limited.held_back, limited.status) == (1, 2, "partial")
        left = push(name, None, connections=world.connections, dry_run=True, only_ids=keys).sample
        assert len(left) == 2
        only = push(name, world.verdicts[model], connections=world.connections,
                    only_ids={str(left[0]["external_id"])}).connections[0]   # a CRM id selects as well
        assert only.written == 1
        rest = push(name, world.verdicts[model], connections=world.connections, only_ids=keys).connections[0]
        assert rest.written == 1
        assert push(name, None, connections=world.connections, dry_run=True,
                    only_ids=keys).connections[0].updates == 0
        logged = query("select status, error_class, message from ops.push_log where model = ? and "
                       "status = 'data_error'", [name])
        assert logged and logged[0]["error_class"] == "data_error"
    finally:
        execute(f'create or replace table reverse_etl."{model}" as select * from reverse_etl."{model}__saved"')
        execute(f'drop table reverse_etl."{model}__saved"')


# -- rejected rows: retried, parked, released -------------------------------------------------------------
def test_rejected_rows_are_retried_then_parked_then_released(world):
    model, name = "rev_hubspot__deals", "hubspot_deals_parking"
    server = world.servers["hubspot"]
    write_sync(name, {"model": model, "destination": {"provider": "hubspot", "object": "deals"},
                      "mode": "update", "fields": {"name": "dealname"}, "max_attempts": 2})
    victims = [str(r["external_id"]) for r in model_rows(model)][:2]
    requests.post(f"{server.base_url}/_sandbox/hubspot/write_failures", timeout=30, json={
        "rules": [{"object": "deals", "ids": victims, "message": "Deal is locked"}]}).raise_for_status()
    try:
        first = push(name, world.verdicts[model], connections=world.connections).connections[0]
        assert (first.rejected, first.newly_parked, first.status) == (2, 0, "partial")
        second = push(name, world.verdicts[model], connections=world.connections).connections[0]
        assert (second.updates, second.rejected, second.newly_parked) == (2, 2, 2)
        third = push(name, world.verdicts[model], connections=world.connections).connections[0]
        assert (third.parked, third.updates, third.calls) == (2, 0, 0)
        status = CliRunner().invoke(app, ["status"])
        assert f"{name}: 2 record(s) parked" in status.output, status.output
    finally:
        requests.post(f"{server.base_url}/_sandbox/hubspot/write_failures", json={"rules": []},
                      timeout=30).raise_for_status()
    result = CliRunner().invoke(app, ["push", name, "--retry-parked", "--json", "--config", str(world.config_path)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output.strip().splitlines()[-1])
    assert body["connections"][0]["written"] == 2
    assert query("select count(*) as n from ops.push_quarantine where model = ?", [name])[0]["n"] == 0


# -- validation ----------------------------------------------------------------------------------------
def test_validate_reports_unknown_model_unwritable_field_and_missing_write_scope(world, tmp_path, monkeypatch):
    directory = tmp_path / "syncs"
    directory.mkdir()
    (directory / "bad_model.yml").write_text(
        "destination: {provider: hubspot, object: companies}\nfields: {name: name}\nmodel: rev_hubspot__nope\n")
    (directory / "bad_field.yml").write_text(
        "model: rev_salesforce__accounts\ndestination: {provider: salesforce, object: accounts}\n"
        "fields:\n  name: Name\n  website: CreatedDate\n")
    (directory / "no_scope.yml").write_text(
        "model: rev_pipedrive__deals\ndestination:\n  provider: pipedrive\n  object: deals\n"
        "  connection: pipedrive-readonly\nfields: {name: title}\n")
    (directory / "bad_key.yml").write_text(   # Salesforce Accounts have no natural key (Contacts/Leads: email)
        "model: rev_salesforce__accounts\ndestination: {provider: salesforce, object: accounts}\n"
        "fields: {name: Name}\nmatch: {by: natural_key, field: email, column: name}\n")
    data = yaml.safe_load(world.config_path.read_text())
    data["connections"].append({**data["connections"][2], "id": "pipedrive-readonly",
                                "write_back": {"enabled": False}})
    config = tmp_path / "connections.yml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("CANONRY_SYNCS_DIR", str(directory))
    result = CliRunner().invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 1
    out = result.output
    assert f"{directory / 'bad_model.yml'}:3: [unknown_model] model" in out, out
    assert f"{directory / 'bad_field.yml'}:5: [field_not_writable] fields.website" in out, out
    assert f"{directory / 'no_scope.yml'}:2: [write_back_disabled] destination" in out, out
    assert f"{directory / 'bad_key.yml'}:4: [natural_key_not_supported] match" in out, out


def test_push_to_one_destination_connection(world):
    """What a Dagster partition (one destination connection) pushes: only that connection's records."""
    every = push("rev_hubspot__contacts", None, connections=world.connections, dry_run=True)
    one = push("rev_hubspot__contacts", None, connections=world.connections, dry_run=True, connection="hubspot-acme")
    other = push("rev_hubspot__contacts", None, connections=world.connections, dry_run=True,
                 connection="hubspot-elsewhere")
    assert [c.connection_id for c in every.connections] == [c.connection_id for c in one.connections] == [
        "hubspot-acme"]
    assert other.connections == []


def test_sync_schema_is_current():
    from canonry.reverse_etl.syncs import json_schema

    assert json.loads((PROJECT_ROOT / "docs" / "sync.schema.json").read_text()) == json_schema()


def test_leave_the_sandboxes_clean_for_test_push(world):
    """test_push.py counts requests and writes from its start: clear what this file did."""
    for provider, server in world.servers.items():
        clear_write_log(server, provider)
        requests.delete(f"{server.base_url}/_sandbox/requests", timeout=30).raise_for_status()
    assert all(write_requests(s) == [] and writes(world, p) == [] for p, s in world.servers.items())
