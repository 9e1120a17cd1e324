"""`canonry sync --jobs N` and tenant schemas on PostgreSQL, through the CLI in subprocesses on a fresh data
dir and a database of its own (one sync serves both tests).

--jobs: the connections sync in child processes at the same time (one pid each, their runs overlapping),
a connection that fails does not lose the others' loads, the exit code says one failed, one dbt build follows.
Tenants: each tenant's role reads its `canonical_<tenant>` views (kept after the dbt build) and nothing
else: another tenant's schema and the canonical schema are "permission denied".
Shadow (docs/ROLLOUTS.md) on PostgreSQL: a changed copy of the dbt project built beside the live schemas from
raw, with no API call, diffed against canonical; `--fail-on` fails on the column it empties."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.warehouse import PROJECT_ROOT
from tests.helpers import clear_request_log, query, request_log, set_faults, truth
from tests.pg import HOST, PORT, _admin, temporary_database

SCALE = 15
OBJECTS = ["contacts", "companies", "owners"]  # small; the gate checks the tables these feed
TENANTS = {"hubspot-a": "acme", "hubspot-b": "globex", "hubspot-bad": "acme"}


@dataclass
class Synced:
    url: str
    done: subprocess.CompletedProcess
    servers: dict
    roles: dict[str, str]   # tenant -> its role
    env: dict[str, str]
    root: Path


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "canonry.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}, cwd=PROJECT_ROOT, timeout=900)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    root = tmp_path_factory.mktemp("jobs")
    servers = {cid: start_sandbox("hubspot", scale=SCALE, seed=seed)
               for seed, cid in enumerate(TENANTS, start=1)}
    env = {"CANONRY_DATA_DIR": str(root / "data"), "CANONRY_KEY_FILE": str(root / "master.key"),
           "CANONRY_TEST_JOBS_TOKEN": DEFAULT_TOKENS["hubspot"], "CANONRY_TEST_JOBS_BAD": "a-token-nobody-knows"}
    (root / "connections.yml").write_text(yaml.safe_dump({"connections": [
        {"id": cid, "tenant": tenant, "provider": "hubspot", "base_url": servers[cid].base_url, "objects": OBJECTS,
         "auth": {"kind": "api_key", "secret": "env:CANONRY_TEST_JOBS_" + ("BAD" if "bad" in cid else "TOKEN")}}
        for cid, tenant in TENANTS.items()]}))
    for server in servers.values():
        set_faults(server, latency_ms=100)  # each sync lasts seconds: long enough for the runs to meet
    suffix = uuid.uuid4().hex[:8]
    roles = {tenant: f"postgres_tenant_{tenant}_{suffix}" for tenant in set(TENANTS.values())}
    admin = _admin()
    try:
        with temporary_database("postgres_jobs") as url:
            env["CANONRY_WAREHOUSE"] = url
            for tenant, role in roles.items():
                admin.cursor().execute(f'CREATE ROLE "{role}" LOGIN')
                granted = _cli(env, "tenant", "grant", tenant, "--role", role)  # before any canonical table
                assert granted.returncode == 0, granted.stderr
            done = _cli(env, "sync", "--config", str(root / "connections.yml"), "--jobs", "3")
            yield Synced(url, done, servers, roles, env, root)
    finally:
        for role in roles.values():
            admin.cursor().execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()
        for server in servers.values():
            server.stop()


@pytest.mark.postgres
def test_sync_jobs_runs_connections_in_parallel_processes_and_one_failure_loses_nothing(synced, monkeypatch):
    done = synced.done
    assert done.returncode == 1, done.stdout + done.stderr  # one connection failed: so did the run
    assert "Traceback" not in done.stderr, done.stderr
    for cid in ("hubspot-a", "hubspot-b"):
        assert f"{cid}: " in done.stdout and " records, " in done.stdout, done.stdout
    assert "hubspot-bad: " in done.stderr and "auth" in done.stderr.lower(), done.stderr
    assert done.stdout.count("dbt build: passed") == 1, done.stdout + done.stderr  # one build after all loads
    assert "validation: passed" in done.stdout, done.stdout + done.stderr

    monkeypatch.setenv("CANONRY_WAREHOUSE", synced.url)
    runs = {r["connection_id"]: r for r in query(
        "select connection_id, status, pid, started_at, finished_at from ops.sync_runs")}
    assert {cid: r["status"] for cid, r in runs.items()} == {
        "hubspot-a": "success", "hubspot-b": "success", "hubspot-bad": "failed"}
    assert len({r["pid"] for r in runs.values()}) == 3  # a process per connection
    a, b = runs["hubspot-a"], runs["hubspot-b"]
    assert max(a["started_at"], b["started_at"]) < min(a["finished_at"], b["finished_at"])  # at once

    for cid in ("hubspot-a", "hubspot-b"):  # the failure lost nothing of the others' loads
        rows = query("select remote_id from canonical.crm_contacts where connection_id = ?", [cid])
        assert {r["remote_id"] for r in rows} == {str(r["id"]) for r in truth(synced.servers[cid], "contacts")}


def _read_as(role: str, url: str, sql: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=PORT, user=role, dbname=url.rsplit("/", 1)[1])
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        conn.close()


@pytest.mark.postgres
def test_a_tenant_role_reads_its_own_rows_and_no_other_tenants(synced):
    import psycopg2

    for tenant, role in synced.roles.items():
        other = next(t for t in synced.roles if t != tenant)
        rows = _read_as(role, synced.url, f"select tenant_id, count(*) from canonical_{tenant}.crm_contacts "
                                          f"group by 1")
        assert rows == [(tenant, SCALE)], rows  # its connection's contacts, after the dbt build
        for forbidden in (f"canonical_{other}.crm_contacts", "canonical.crm_contacts", "raw_hubspot.contacts"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                _read_as(role, synced.url, f"select count(*) from {forbidden}")


def test_tenant_schemas_on_duckdb_are_a_clear_error(data_dir):
    done = _cli({"CANONRY_DATA_DIR": str(data_dir)}, "tenant", "grant", "acme", "--role", "someone")
    assert done.returncode == 1 and "need a PostgreSQL warehouse" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_shadow_build_and_diff_on_postgres(synced, monkeypatch):
    from canonry.transform import DBT_DIR

    project = synced.root / "dbt_no_first_name"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    model = project / "models" / "staging" / "hubspot" / "stg_hubspot__contacts.sql"
    field = "{{ json_field('payload', payload_paths, 'properties.firstname') }} as first_name"
    assert field in model.read_text()
    model.write_text(model.read_text().replace(field, "cast(null as varchar) as first_name"))
    monkeypatch.setenv("CANONRY_WAREHOUSE", synced.url)
    live = query("select contact_id, first_name from canonical.crm_contacts order by contact_id")
    named = sum(1 for r in query("select first_name from canonical.crm_contacts where connection_id = 'hubspot-a'")
                 if r["first_name"] is not None)
    assert named > 0
    for server in synced.servers.values():
        clear_request_log(server)

    done = _cli(synced.env, "shadow", "-c", "hubspot-a", "--project-dir", str(project), "--json",
                "--config", str(synced.root / "connections.yml"), "--fail-on", "crm_contacts.first_name=0")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["dbt_success"] and report["connections"] == ["hubspot-a"]
    [contacts] = [t for t in report["tables"] if t["table"] == "crm_contacts"]
    assert [(c["column"], c["changed"]) for c in contacts["columns"]] == [("first_name", named)]
    assert (contacts["added"], contacts["removed"], contacts["changed"]) == (0, 0, named)
    assert all(s["after"] is None and s["before"] for s in contacts["columns"][0]["samples"])
    assert report["breaches"] == [f"crm_contacts.first_name = {named} exceeds --fail-on crm_contacts.first_name=0"]
    # From raw only (no provider called), beside the live schema (unchanged), in PostgreSQL's shadow schema.
    assert [r for s in synced.servers.values() for r in request_log(s) if not r["path"].startswith("/_sandbox")] == []
    assert query("select contact_id, first_name from canonical.crm_contacts order by contact_id") == live
    assert query("select count(*) as n from canonical__shadow.crm_contacts where first_name is not null")[0]["n"] == 0
