"""DSAR end to end: six providers synced and built, one candidate who is also a CRM contact erased through the
CLI; their email, phone and name are then nowhere in the data dir (files and the DuckDB file's bytes), in no
text column of the warehouse, and a full re-sync plus a replay do not bring them back. Everyone else's
canonical rows are unchanged; the export holds every place `find` listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import requests

from canonry.demo import (
    authorise_oauth_connections,
    demo_config,
    demo_environment,
    resolved_config,
    start_demo_sandboxes,
)
from canonry.forensics import canonical_snapshot
from canonry.governance import audit, dsar
from canonry.pipeline import sync
from canonry.providers import slugs
from canonry.sandbox import DEFAULT_TOKENS
from canonry.transform import run_dbt
from canonry.warehouse import connect
from tests.helpers import lineage

PROVIDERS = slugs()   # the demo runs every provider of the registry
SCALE = 4


def cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "canonry.cli", *args], env=os.environ.copy(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def candidate(server) -> dict:
    """A Greenhouse candidate with a full name no other candidate of the sandbox has."""
    truth = requests.get(server.base_url + "/_sandbox/truth/candidates", timeout=30).json()["records"]
    names = [(r["record"]["first_name"], r["record"]["last_name"]) for r in truth]
    for entry, name in zip(truth, names, strict=True):
        if names.count(name) == 1 and not entry["deleted"]:
            record = entry["record"]
            return {"id": str(entry["id"]), "first": name[0], "last": name[1],
                    "email": record["email_addresses"][0]["value"], "phone": record["phone_numbers"][0]["value"]}
    raise AssertionError("no candidate with a unique name")


def add_crm_contact(server, person: dict) -> None:
    """The same person as a HubSpot contact, created through the provider's API as a CRM user would."""
    response = requests.post(server.base_url + "/crm/v3/objects/contacts", timeout=30,
                             headers={"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"},
                             json={"properties": {"firstname": person["first"], "lastname": person["last"],
                                                  "email": person["email"], "phone": person["phone"]}})
    assert response.status_code in (200, 201), response.text


def occurrences(data_dir: Path, needles: list[str]) -> dict[str, list[str]]:
    """needle -> files of the data dir (the warehouse file included) and warehouse text columns holding it."""
    found: dict[str, list[str]] = {n: [] for n in needles}
    for path in data_dir.rglob("*"):
        if path.is_file() and not path.name.endswith(".canonry-lock"):
            content = path.read_bytes().lower()
            for needle in needles:
                if needle.lower().encode() in content:
                    found[needle].append(str(path.relative_to(data_dir)))
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        columns = conn.execute("select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
                               "join information_schema.tables t using (table_schema, table_name) "
                               "where t.table_type = 'BASE TABLE' and c.data_type in ('VARCHAR', 'JSON')").fetchall()
        for schema, table, column in columns:
            for needle in needles:
                hits = conn.execute(f'select count(*) from "{schema}"."{table}" '
                                    f'where lower(cast("{column}" as varchar)) like ?',
                                    [f"%{needle.lower()}%"]).fetchone()[0]
                if hits:
                    found[needle].append(f"{schema}.{table}.{column}")
    finally:
        conn.close()
    return {n: places for n, places in found.items() if places}


def own_names(person: dict) -> list:
    """The person's first or last name left in their own raw records or canonical rows (Greenhouse keeps the
    two apart, so the full name is not what to look for there)."""
    conn = connect()
    try:
        raw = conn.execute("select payload from raw_greenhouse.candidates where remote_id = ? and "
                           "(payload like ? or payload like ?)",
                           [person["id"], f'%"{person["first"]}"%', f'%"{person["last"]}"%']).fetchall()
        rows = conn.execute("select first_name, last_name from canonical.ats_candidates where remote_id = ? and "
                            "connection_id = 'greenhouse-acme' and (first_name = ? or last_name = ?)",
                            [person["id"], person["first"], person["last"]]).fetchall()
        return raw + rows
    finally:
        conn.close()


def others(subject_ids: set[str]) -> dict:
    conn = connect()
    try:
        out = {}
        for connection_id in (f"{provider}-acme" for provider in PROVIDERS):
            for table, rows in canonical_snapshot(conn, connection_id, lineage=False).items():
                out[(connection_id, table)] = {k: v for k, v in rows.items() if k not in subject_ids}
        return out
    finally:
        conn.close()


@pytest.fixture
def sandboxes(data_dir):
    """The demo's sandboxes and connections (its credentials in the local secret store, OAuth authorised)."""
    demo_environment()
    started = start_demo_sandboxes(demo_config(require_tokens=False), scale=SCALE, seed=11)
    try:
        config, _ = resolved_config(started, require_tokens=False)
        authorise_oauth_connections(config, lambda _: None)
        yield started.servers, resolved_config(started)[0]
    finally:
        started.stop()


def test_erase_a_candidate_who_is_also_a_crm_contact(data_dir, sandboxes, tmp_path):
    servers, config = sandboxes
    assert set(servers) == set(PROVIDERS)
    person = candidate(servers["greenhouse"])
    add_crm_contact(servers["hubspot"], person)
    connections = {c.provider: c for c in config.connections}
    for connection in config.connections:
        assert sync(connection).status == "success", connection.id
    # Seeds and models (their data tests run in the dbt and provider tests).
    assert run_dbt(["build", "--exclude", "resource_type:test"]).success
    full_name = f"{person['first']} {person['last']}"
    needles = [person["email"], person["phone"], full_name]
    assert set(occurrences(data_dir, needles[:2])) == set(needles[:2])  # the person is there before

    conn = connect()
    try:
        contact_ids = {r[0] for r in conn.execute("select remote_id from canonical.crm_contacts where "
                                                  "cast(emails as varchar) like ?", [f"%{person['email']}%"]).fetchall()}
    finally:
        conn.close()
    assert len(contact_ids) == 1
    subject_ids = {person["id"], *contact_ids}
    before = others(subject_ids)

    listed = json.loads(cli("dsar", "find", "--email", person["email"], "--json").stdout)["places"]
    wheres = {p["where"] for p in listed}
    assert {"raw_greenhouse.candidates.payload", "raw_hubspot.contacts.payload", "canonical.ats_candidates.emails",
            "canonical.crm_contacts.emails"} <= wheres
    exported = tmp_path / "export.json"
    cli("dsar", "export", "--email", person["email"], "--out", str(exported))
    document = json.loads(exported.read_text())
    assert {p["where"] for p in document["places"]} >= wheres
    assert all(document["rows"].get(p["where"]) for p in listed if p["kind"] == "warehouse")
    assert person["email"] in exported.read_text()
    exported.unlink()

    cli("dsar", "erase", "--email", person["email"], "--yes")
    assert occurrences(data_dir, needles) == {}
    assert own_names(person) == []
    assert others(subject_ids) == before
    again = dsar.erase(person["email"])  # idempotent: nothing left to do
    assert (again["own_records"], again["rows_rewritten"], again["files"]) == (0, 0, 0)

    # A full re-read of both providers and a replay from raw do not bring the person back.
    for slug in ("greenhouse", "hubspot"):
        assert sync(connections[slug], full_refresh=True).status == "success"
    # The replay of the two connections: their lineage rebuilt whole from raw (`canonry replay` does this
    # for the whole project; the lineage alone is what these raw tables can change).
    assert run_dbt(["build", "--full-refresh", "--select", *lineage("greenhouse", "hubspot"),
                    "--exclude", "resource_type:test"]).success
    assert occurrences(data_dir, needles) == {}
    assert own_names(person) == []
    assert others(subject_ids) == before
    trail = audit.entries()
    assert {"sync", "dsar_find", "dsar_export", "dsar_erase"} <= {row["action"] for row in trail}
    assert person["email"] not in json.dumps(trail, default=str)
