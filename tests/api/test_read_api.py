"""The read API against a live `canonry api serve` (tests/api/conftest.py): a client we did not write
(Schemathesis, from the served OpenAPI document), then tenancy, pagination under a concurrent load, keys,
rate limits and error bodies."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from canonry.api.resources import RESOURCES
from tests.api.conftest import ApiWorld
from tests.api.conftest import walk as _walk
from tests.helpers import query

EXAMPLES_PER_OPERATION = 6


# -- Schemathesis ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def known_ids(api_world: ApiWorld) -> dict[str, list[str]]:
    """A few real acme ids per resource, so that generated GET-by-id cases reach records, not just 404s."""
    with api_world.environment():
        return {r.path: [row["id"] for row in query(
            f"select {r.id_column} as id from canonical.{r.table} where tenant_id = 'acme' order by 1 limit 5")]
            for r in RESOURCES}


@pytest.fixture(scope="module")
def api_schema(api_world: ApiWorld):
    return schemathesis.openapi.from_url(api_world.base_url + "/openapi.json")


OPERATIONS = [(r.path, suffix) for r in RESOURCES for suffix in ("", "/{id}")]


@pytest.mark.parametrize(("path", "suffix"), OPERATIONS, ids=[p + s for p, s in OPERATIONS])
def test_every_operation_conforms_to_the_served_openapi_document(path, suffix, api_world, api_schema, known_ids):
    """No server error, documented status codes, bodies and headers that match the schema — for every
    resource, list and by id (every other by-id case gets a real id of the key's tenant). Cases come from
    Schemathesis' strategies, run by Hypothesis (its pytest plugin's lazy loader does not work with
    pytest >= 9.1)."""
    operation = api_schema[path + suffix]["GET"]
    turns = itertools.count()

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def conforms(case) -> None:
        if suffix and known_ids[path] and next(turns) % 2 == 0:
            case.path_parameters["id"] = known_ids[path][0]
        # An opaque cursor cannot be described by its schema: a well-formed string that is no cursor of
        # ours is rightly refused (400), which this one check would count as "valid data rejected".
        excluded = [positive_data_acceptance] if "cursor" in (case.query or {}) else []
        case.call_and_validate(headers={"Authorization": f"Bearer {api_world.keys['acme']}"},
                               excluded_checks=excluded)

    conforms()


# -- the contract -----------------------------------------------------------------------------------------

WAREHOUSE_TYPES = {"string": ("VARCHAR",), "integer": ("INTEGER", "BIGINT"), "decimal": ("DECIMAL(18,2)",),
                   "boolean": ("BOOLEAN",), "date": ("DATE",), "timestamp": ("TIMESTAMP WITH TIME ZONE",),
                   "json_list": ("JSON",), "json_object": ("JSON",)}


def test_served_document_is_the_committed_one_and_kinds_match_the_built_tables(api_world):
    from canonry.api.openapi import DOCUMENT_PATH
    from canonry.canonical import column_kind

    assert api_world.get("/openapi.json").json() == json.loads(DOCUMENT_PATH.read_text())
    with api_world.environment():
        built = query("select table_name, column_name, data_type from information_schema.columns "
                      "where table_schema = 'canonical'")
    assert {r["table_name"] for r in built} == {r.table for r in RESOURCES}
    wrong = [(r["table_name"], r["column_name"], r["data_type"], column_kind(r["table_name"], r["column_name"])) for r in built
             if r["data_type"] not in WAREHOUSE_TYPES[column_kind(r["table_name"], r["column_name"])]]
    assert not wrong, f"the contract types (canonry/canonical.py) disagree with the dbt marts: {wrong}"


# -- tenancy ---------------------------------------------------------------------------------------------

def test_a_key_reads_only_its_tenants_rows_on_every_resource(api_world):
    with api_world.environment():  # one warehouse connection for the expected rows of every table
        expected = query(" union all ".join(
            f"select '{r.path}' as path, tenant_id, {r.id_column} as id, is_deleted from canonical.{r.table}"
            for r in RESOURCES))
    both_tenants = 0
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        key = api_world.keys[tenant]
        for resource in RESOURCES:
            mine = {r["id"] for r in expected if r["path"] == resource.path and r["tenant_id"] == tenant
                    and not r["is_deleted"]}
            theirs = [r["id"] for r in expected if r["path"] == resource.path and r["tenant_id"] == other]
            rows = _walk(api_world, resource.path, key, limit=50, fields="tenant_id")
            assert {row["tenant_id"] for row in rows} <= {tenant}, resource.path
            assert {row[resource.id_column] for row in rows} == mine, resource.path
            if theirs:  # another tenant's id is not found, not forbidden: its existence is not disclosed
                both_tenants += bool(mine)
                response = api_world.get(f"{resource.path}/{theirs[0]}", key)
                assert response.status_code == 404, (resource.path, response.text)
                assert response.json()["error"]["code"] == "not_found"
    assert both_tenants >= 9, "the CRM tables of both tenants should hold rows"


# -- a load between two pages ------------------------------------------------------------------------------

def test_walking_all_pages_while_a_sync_loads_returns_each_existing_record_once(mid_walk_load):
    load = mid_walk_load
    created_and_kept = set(load.changed["create"]) - set(load.changed["delete"])
    assert len(load.after_load - load.at_start) == len(created_and_kept) >= 10, "the load added nothing"
    still_there = load.at_start & load.after_load
    counts = Counter(load.served)
    assert {i for i in still_there if counts[i] != 1} == set(), "a record that existed at the start was " \
                                                                "skipped or repeated"
    assert max(counts.values()) == 1
    assert set(load.served) <= load.after_load | load.at_start  # a deleted one may have come on page 1


def test_modified_after_include_deleted_and_remote_data(api_world, mid_walk_load):
    key, path, load = api_world.keys["acme"], "/v1/crm/contacts", mid_walk_load
    assert set(load.changed["delete"]) <= set(load.deleted.values())
    # Reads come from published snapshots of the warehouse (docs/API.md): one is published once the
    # warehouse has been quiet for QUIET_SECONDS, so the load may show a moment after it returned.
    deadline = time.monotonic() + 20
    listed = {r["contact_id"] for r in _walk(api_world, path, key, limit=100)}
    while listed != load.after_load and time.monotonic() < deadline:
        time.sleep(0.5)
        listed = {r["contact_id"] for r in _walk(api_world, path, key, limit=100)}
    assert listed == load.after_load and not listed & set(load.deleted)
    with_deleted = _walk(api_world, path, key, limit=100, include_deleted="true", fields="is_deleted")
    assert {r["contact_id"] for r in with_deleted if r["is_deleted"]} == set(load.deleted)
    with api_world.environment():
        recent = {r["id"] for r in query("select contact_id as id from canonical.crm_contacts where tenant_id = "
                                         "'acme' and last_synced_at > ? and not is_deleted", [load.before])}
    since = _walk(api_world, path, key, limit=100, modified_after=load.before.isoformat())
    assert {r["contact_id"] for r in since} == recent
    assert len(load.changed["create"]) <= len(recent) < len(listed)

    contact = _walk(api_world, path, key, limit=1, fields="first_name,remote_id")[0]
    response = api_world.get(f"{path}/{contact['contact_id']}", key, include_remote_data="true",
                             fields="first_name")
    body = response.json()
    assert set(body) == {"contact_id", "first_name", "remote_data"}
    [raw] = body["remote_data"]
    assert raw["source"] == "raw_hubspot.contacts"
    assert raw["data"]["id"] == contact["remote_id"]
    assert raw["data"]["properties"]["firstname"] == body["first_name"]
    assert "remote_data" not in api_world.get(f"{path}/{contact['contact_id']}", key).json()


# -- keys, scopes, limits, errors ------------------------------------------------------------------------

def test_keys_are_stored_hashed_and_a_revoked_key_is_refused_at_once(api_world):
    key = api_world.create_key("acme", "--label", "to revoke")
    key_id, secret = key.split("_")[1], key.split("_", 2)[2]
    assert api_world.get("/v1/crm/users", key).status_code == 200
    stored = [p for p in api_world.data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "keys.json" for p in stored)
    assert [p for p in stored if secret.encode() in p.read_bytes()] == [], "the key is stored in clear"
    listed = api_world.cli("api", "keys", "list", "--json").stdout
    assert key_id in listed and secret not in listed

    api_world.cli("api", "keys", "revoke", key_id)
    response = api_world.get("/v1/crm/users", key)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthenticated"
    assert json.loads(api_world.cli("api", "keys", "list", "--json").stdout)[-1]["revoked_at"]
    unknown = api_world.cli("api", "keys", "revoke", "000000000000", check=False)
    assert unknown.returncode == 2 and "keys list" in unknown.stderr


def test_scopes_rate_limits_and_error_bodies(api_world):
    crm_only = api_world.create_key("acme", "--scope", "crm:read", "--rate-limit", "3")
    forbidden = api_world.get("/v1/ats/candidates", crm_only)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == {"code": "forbidden", "message": "this key lacks the scope ats:read of "
                                         "/v1/ats/candidates", "hint": "create a key with `--scope ats:read`"}
    remaining = [api_world.get("/v1/crm/users", crm_only).headers["RateLimit-Remaining"] for _ in range(2)]
    assert remaining == ["1", "0"]  # the 403 above counted too: a refused request is still a request
    limited = api_world.get("/v1/crm/users", crm_only)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["RateLimit-Limit"] == "3" and limited.headers["RateLimit-Remaining"] == "0"
    assert limited.json()["error"]["code"] == "rate_limited"

    key = api_world.keys["acme"]
    cases = {
        (None, "/v1/crm/users", ()): (401, "unauthenticated"),
        ("cnry_000000000000_" + "x" * 43, "/v1/crm/users", ()): (401, "unauthenticated"),
        (key, "/v1/crm/users/not-an-id", ()): (404, "not_found"),
        (key, "/v1/crm/nothing", ()): (404, "not_found"),
        (key, "/v1/crm/users", (("limit", "0"),)): (400, "invalid_parameter"),
        (key, "/v1/crm/users", (("fields", "name,salary"),)): (400, "invalid_parameter"),
        (key, "/v1/crm/users", (("cursor", "abc"),)): (400, "invalid_parameter"),
        (key, "/v1/crm/users", (("modified_after", "yesterday"),)): (400, "invalid_parameter"),
    }
    for (presented, path, params), (status, code) in cases.items():
        response = api_world.get(path, presented, **dict(params))
        assert response.status_code == status, (path, params, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"], error
        assert error.get("hint") or error.get("parameter"), f"{path} {params}: the body should say what to do"


def test_reads_go_on_while_a_writer_holds_the_warehouse_and_see_its_write_once_it_lands(api_world):
    """A process holding the DuckDB file for writing (a sync, a dbt build) neither fails nor delays reads:
    they read the published snapshot; the write shows once the warehouse is quiet again."""
    path, key = "/v1/crm/users", api_world.keys["acme"]
    script = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
              "c.execute(\"insert into canonical.crm_users select * replace ('api-test-user' as user_id) "
              "from canonical.crm_users where tenant_id = 'acme' limit 1\"); print('held', flush=True); "
              "sys.stdin.read(); c.close()")
    holder = subprocess.Popen([sys.executable, "-c", script, str(api_world.data_dir / "warehouse.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        during = [api_world.get(path, key).status_code for _ in range(3)]
    finally:
        holder.communicate("", timeout=30)
    assert during == [200, 200, 200]
    deadline = time.monotonic() + 10
    while api_world.get(f"{path}/api-test-user", key).status_code == 404:
        assert time.monotonic() < deadline, "the write never became visible"
        time.sleep(0.2)


def test_no_warehouse_yet_answers_503_with_retry_after(tmp_path, monkeypatch):
    from canonry.api.keys import create_key

    monkeypatch.setenv("CANONRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CANONRY_WAREHOUSE", raising=False)
    key, _ = create_key("acme")
    empty = ApiWorld(tmp_path, {"CANONRY_DATA_DIR": str(tmp_path / "data")}, {}, None)
    empty.start_server()
    try:
        response = empty.get("/v1/crm/users", key)
    finally:
        empty.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"]["code"] == "warehouse_busy"
    assert "canonry sync" in response.json()["error"]["message"]
