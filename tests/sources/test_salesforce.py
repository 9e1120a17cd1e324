"""Salesforce end to end: sandbox over HTTP (OAuth web-server flow) -> dlt -> raw_salesforce -> dbt -> crm_*."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import simple_salesforce

from canonry.canonical import id_column
from canonry.errors import ErrorClass
from canonry.pipeline import sync
from canonry.sandbox import DEFAULT_TOKENS
from canonry.sandbox.salesforce import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI
from canonry.sandbox.salesforce.custom_fields import CUSTOM_FIELDS
from canonry.secrets import store_secret
from canonry.transform import build
from expectations.gate import run_gate
from sources.salesforce.settings import OBJECTS
from tests.crm_truth import assert_stage_flags_match_status, expected_amount_reporting, reporting_rates
from tests.helpers import canonical, clear_request_log, lineage, mutate, query, request_log, truth
from tests.pg import WAREHOUSES
from tests.reliability.providers import CRUD, ProviderCase, oauth_connect, own_truth

SCALE = 180
# The OAuth dance of tests/test_oauth.py (tests/oauth_helpers.py). Salesforce answers every bad code with
# `invalid_grant: authentication failure` (no specific reason).
OAUTH_DANCE = {"objects": ("accounts", "users"), "least_scopes": ("api", "refresh_token"),
               "checks": (("accounts", "Account"), ("users", "User")), "specific_code_errors": False}
TABLES = {  # sandbox object -> canonical table (Tasks split between tasks and engagements)
    "Account": "crm_accounts", "Contact": "crm_contacts", "Lead": "crm_leads", "Opportunity": "crm_opportunities",
    "OpportunityStage": "crm_stages", "User": "crm_users", "Note": "crm_notes",
}
API = "/services/data/v62.0"
# Custom fields (opt-in object `custom_fields`): the main world reads them; canonical kind of each sandbox kind.
CUSTOM_TABLES = {"Account": "crm_accounts", "Contact": "crm_contacts", "Opportunity": "crm_opportunities"}
CANONICAL_KIND = {"text": "text", "number": "number", "date": "date", "enum": "enum", "multi_select": "multi_select",
                  "currency": "currency", "user": "user_reference"}


def oauth_tokens(server, scope: str = "api refresh_token") -> dict:
    """The web-server flow with PKCE, as a browser and our callback would run it."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    answer = requests.get(server.base_url + "/services/oauth2/authorize", params={
        "response_type": "code", "client_id": DEFAULT_CLIENT_ID, "redirect_uri": DEFAULT_REDIRECT_URI,
        "scope": scope, "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"},
        allow_redirects=False, verify=False, timeout=30)
    assert answer.status_code == 302
    params = parse_qs(urlsplit(answer.headers["location"]).query)
    assert params["state"] == ["s1"]
    token = requests.post(server.base_url + "/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": params["code"][0], "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET, "redirect_uri": DEFAULT_REDIRECT_URI, "code_verifier": verifier},
        verify=False, timeout=30)
    assert token.status_code == 200, token.text
    return token.json()


def oauth_connection(server, connect_sandbox, monkeypatch, connection_id: str = "sf-acme", **overrides):
    tokens = oauth_tokens(server)
    store_secret(f"local:{connection_id}", json.dumps({
        **tokens, "token_endpoint": server.base_url + "/services/oauth2/token", "client_id": DEFAULT_CLIENT_ID}))
    monkeypatch.setenv("SF_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    return connect_sandbox(server, connection_id, auth={"kind": "oauth2", "secret": f"local:{connection_id}",
                                                        "client_id": DEFAULT_CLIENT_ID,
                                                        "client_secret": "env:SF_CLIENT_SECRET",
                                                        "redirect_uri": DEFAULT_REDIRECT_URI}, **overrides)


def _assert_equals_truth(server) -> None:
    rates = reporting_rates("USD")
    for object_name, table in TABLES.items():
        expected = {r["id"]: r for r in truth(server, object_name)}
        rows = canonical(table, "salesforce")
        assert set(rows) == set(expected), f"{table}: ids differ from the sandbox's {object_name}"
        for remote_id, record in expected.items():
            row, body = rows[remote_id], record["record"]
            assert row["is_deleted"] == record["deleted"], f"{table} {remote_id}: is_deleted"
            if object_name in ("Account", "Opportunity", "User"):
                assert row["name"] == body["Name"], f"{table} {remote_id}: name"
            if object_name in ("Contact", "Lead"):
                assert (row["first_name"], row["last_name"]) == (body["FirstName"], body["LastName"])
            if object_name == "Account":
                assert row["description"] == body["Description"]
            if object_name == "Opportunity":
                assert row["description"] == body["Description"]
                assert str(row["amount"]) == f"{body['Amount']:.2f}"
                assert row["currency"] == body["CurrencyIsoCode"]
                converted = expected_amount_reporting(row["amount"], body["CurrencyIsoCode"], rates)
                assert converted is not None and row["amount_reporting"] == converted, remote_id
                assert row["status"] == ("WON" if body["IsWon"] else "LOST" if body["IsClosed"] else "OPEN")
            if object_name == "Note":
                assert row["content"] == body["Body"]
        ids = query(f"select count(*) as n, count(distinct {id_column(table)}) as d from canonical.{table}")
        assert ids[0]["n"] == ids[0]["d"], f"{table} has duplicate ids"
    tasks = {r["id"]: r for r in truth(server, "Task")}
    events = {r["id"]: r for r in truth(server, "Event")}
    task_rows, engagement_rows = canonical("crm_tasks", "salesforce"), canonical("crm_engagements", "salesforce")
    plain = {i for i, r in tasks.items() if r["record"]["TaskSubtype"] not in ("Call", "Email")}
    assert set(task_rows) == plain
    assert set(engagement_rows) == (set(tasks) - plain) | set(events)
    for remote_id, row in engagement_rows.items():
        record = (tasks.get(remote_id) or events[remote_id])
        assert row["is_deleted"] == record["deleted"]
        assert row["type"] == {"Call": "CALL", "Email": "EMAIL"}.get(record["record"].get("TaskSubtype"), "MEETING")
    for remote_id, row in task_rows.items():
        assert row["is_deleted"] == tasks[remote_id]["deleted"]
        assert row["status"] == ("CLOSED" if tasks[remote_id]["record"]["IsClosed"] else "OPEN")


def _expected_custom_value(kind: str, value, connection_id: str):
    if kind == "multi_select":
        return value.split(";")              # the sandbox's picklist labels equal their API values
    if kind == "currency":
        return {"amount": value, "currency": None}
    if kind == "user":
        return hashlib.md5(f"{connection_id}:{value}".encode()).hexdigest()
    return value


def _assert_custom_fields(server, connection_id: str) -> None:
    """Every custom field value of the sandbox is in canonical `custom_fields`, named by its API name
    without `__c`, lower-cased, with its canonical type and API name; every kind appears."""
    for object_name, table in CUSTOM_TABLES.items():
        rows = canonical(table, "salesforce")
        kinds = set()
        for record in truth(server, object_name):
            expected = {}
            for name, _, kind, _ in CUSTOM_FIELDS[object_name]:
                value = record["record"].get(name)
                if value not in (None, ""):
                    expected[name[:-3].lower()] = {"value": _expected_custom_value(kind, value, connection_id),
                                                   "type": CANONICAL_KIND[kind], "remote_key": name}
                    kinds.add(kind)
            got = rows[record["id"]]["custom_fields"]
            assert (got if isinstance(got, dict) else json.loads(got)) == expected, (table, record["id"])
        assert kinds == set(CANONICAL_KIND), table


def _dangling(child: str, column: str, parent: str, parent_id: str) -> int:
    return query(f"""select count(*) as n from canonical.{child} c left join canonical.{parent} p
                     on p.{parent_id} = c.{column} where c.{column} is not null and p.{parent_id} is null""")[0]["n"]


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_full_then_incremental_equals_sandbox_truth(warehouse, sandbox_factory, connect_sandbox, monkeypatch):
    # Custom fields of every kind on Account, Contact, Opportunity, read through the opt-in object.
    server = sandbox_factory("salesforce", scale=SCALE, custom_fields=True)
    connection = oauth_connection(server, connect_sandbox, monkeypatch, objects=list(OBJECTS))
    clear_request_log(server)

    first = sync(connection)
    assert first.status == "success", first.error
    assert first.records["contacts"] == SCALE and first.records["opportunity_stages"] == 10
    # Every custom field definition (the sandbox's, plus External_Id__c and the lead-score field reverse ETL uses).
    assert first.records["custom_fields"] == sum(len(v) for v in CUSTOM_FIELDS.values()) + 3 + 1
    # API efficiency: per object one describe (the custom-field objects' shared by their definitions and their
    # records) and ceil(N/2000) query calls, nothing else.
    log = [r for r in request_log(server) if r["path"].startswith(API)]
    queries = [r for r in log if r["path"] == f"{API}/query"]
    describes = [r for r in log if r["path"].endswith("/describe")]
    assert len(describes) == 9 and len(queries) == 9 and len(log) == 18
    assert all("ORDER+BY+SystemModstamp+ASC" in r["query"] for r in queries)

    assert build(lineage("salesforce")).success
    _assert_equals_truth(server)
    assert_stage_flags_match_status("salesforce", stages_carry_outcome=True)
    assert _dangling("crm_contacts", "account_id", "crm_accounts", "account_id") == 0
    assert _dangling("crm_opportunities", "account_id", "crm_accounts", "account_id") == 0
    assert _dangling("crm_opportunities", "stage_id", "crm_stages", "stage_id") == 0
    assert query("select count(*) as n from canonical.crm_opportunities where provider = 'salesforce' "
                 "and stage_id is null")[0]["n"] == 0
    _assert_custom_fields(server, "sf-acme")

    # A custom field relabelled at Salesforce (its API name stays): same key in canonical rows.
    relabel = requests.post(f"{server.base_url}/_sandbox/salesforce/custom_fields",
                            json={"object": "Contact", "name": "Segment__c", "label": "Customer segment"}, timeout=10)
    assert relabel.status_code == 200, relabel.text

    # Creates, updates, deletes of a random sample -> incremental -> equals truth again.
    changed = {}
    for object_name in ("Account", "Contact", "Lead", "Opportunity", "Task", "Event", "Note"):
        changed[object_name] = mutate(server, object_name, create=3, update=5, delete=2)
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    assert second.records["contacts"] == 10
    assert second.records["custom_fields"] == 1       # only the relabelled definition is written again
    assert build(lineage("salesforce")).success
    _assert_equals_truth(server)
    assert_stage_flags_match_status("salesforce", stages_carry_outcome=True)
    _assert_custom_fields(server, "sf-acme")
    assert query("select label, field_name from staging.stg_salesforce__custom_fields where remote_key = 'Segment__c'"
                 ) == [{"label": "Customer segment", "field_name": "segment"}]
    gate = run_gate(list(CUSTOM_TABLES.values()))
    assert gate.success, [(c.table, c.expectation, c.column, c.observed) for c in gate.failed()]
    title = next(r for r in truth(server, "Contact") if r["id"] == changed["Contact"]["update"][0])["record"]["Title"]
    assert title.startswith("updated")
    assert query("select count(*) as n from staging.stg_salesforce__contacts where remote_id = ? and title = ?",
                 [changed["Contact"]["update"][0], title])[0]["n"] == 1
    assert _dangling("crm_contacts", "account_id", "crm_accounts", "account_id") == 0

    # Incremental cost ∝ changes: one queryAll batch and one getDeleted per object, no describe (cached) but
    # the custom-field objects' (definitions are read once per run).
    log = [r for r in request_log(server) if r["path"].startswith(API)]
    assert len([r for r in log if r["path"] == f"{API}/queryAll"]) == 9
    assert len([r for r in log if r["path"].endswith("/deleted/")]) == 8   # OpportunityStage has no deletes
    assert sorted(r["path"].split("/")[-2] for r in log if r["path"].endswith("/describe")) == sorted(CUSTOM_TABLES)
    assert len(log) == 17 + len(CUSTOM_TABLES)
    raw = query("select count(*) as n, count(distinct remote_id || cast(remote_updated_at as varchar)) as d "
                "from raw_salesforce.contacts")[0]
    assert raw["n"] == raw["d"] == SCALE + 3 + 5 + 2


def test_large_full_sync_pages_by_2000(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    server = sandbox_factory("salesforce", scale=4100)
    connection = oauth_connection(server, connect_sandbox, monkeypatch, objects=["contacts"])
    clear_request_log(server)
    result = sync(connection)
    assert result.status == "success", result.error
    log = [r for r in request_log(server) if r["path"].startswith(API)]
    pages = [r for r in log if r["path"].startswith(f"{API}/query")]
    assert len(pages) == math.ceil(4100 / 2000)
    assert query("select count(distinct remote_id) as n from raw_salesforce.contacts")[0]["n"] == 4100


def test_daily_budget_stops_with_checkpoint_and_resumes(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    server = sandbox_factory("salesforce", scale=4500, daily_limit=3)
    connection = oauth_connection(server, connect_sandbox, monkeypatch, objects=["accounts"])
    # describe + two query batches fit the budget; the third batch is refused.
    first = sync(connection)
    assert first.status == "partial"
    assert first.error.error_class == ErrorClass.QUOTA_EXHAUSTED
    assert query("select count(*) as n from raw_salesforce.accounts")[0]["n"] == 4000
    refused = [r for r in request_log(server) if r["status"] == 403]
    assert len(refused) == 1
    run = query("select status, error_class from ops.sync_runs order by started_at desc limit 1")[0]
    assert run == {"status": "partial", "error_class": "quota_exhausted"}

    requests.post(server.base_url + "/_sandbox/salesforce/limits", json={"reset": True, "daily_limit": 100_000},
                  timeout=30).raise_for_status()
    second = sync(connection)
    assert second.status == "success", second.error
    raw = query("select count(*) as n, count(distinct remote_id) as d from raw_salesforce.accounts")[0]
    assert raw == {"n": 4500, "d": 4500}          # no gaps, no duplicates


def test_window_lapsed_deletes_found_by_key_scan(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    server = sandbox_factory("salesforce", scale=150)
    connection = oauth_connection(server, connect_sandbox, monkeypatch, objects=["contacts"])
    assert sync(connection).status == "success"
    # getDeleted windows are sent in whole seconds: a run in the second the last one covered has no window
    # to ask for (it skips the call), so the next run starts in a later second.
    time.sleep(math.ceil(time.time()) - time.time() + 0.05)
    gone = mutate(server, "Contact", delete=4)["delete"]
    # The recycle bin is emptied: queryAll no longer shows them, and getDeleted's log starts after our last sync.
    requests.post(server.base_url + "/_sandbox/salesforce/purge", json={"object": "Contact"}, timeout=30)
    clear_request_log(server)
    assert sync(connection).status == "success"
    scans = [r for r in request_log(server) if r["path"] == f"{API}/query" and "SELECT+Id+FROM+Contact" in r["query"]]
    assert len(scans) == 1
    assert build(["+int_salesforce__crm_contacts"]).success
    rows = query("select remote_id, is_deleted, first_name from staging.int_salesforce__crm_contacts")
    deleted = {r["remote_id"]: r for r in rows if r["is_deleted"]}
    assert set(deleted) == set(gone)
    assert all(r["first_name"] for r in deleted.values())   # fields of the last full version are kept
    assert len(rows) == 150


def test_expired_session_is_refreshed(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    server = sandbox_factory("salesforce", scale=120)
    connection = oauth_connection(server, connect_sandbox, monkeypatch, objects=["contacts", "users"])
    assert sync(connection).status == "success"
    requests.post(server.base_url + "/_sandbox/salesforce/expire_tokens", timeout=30).raise_for_status()
    mutate(server, "Contact", update=3)
    result = sync(connection)
    assert result.status == "success", result.error
    log = request_log(server)
    assert [r["status"] for r in log if r["path"].startswith(API)].count(401) == 1
    assert len([r for r in log if r["path"] == "/services/oauth2/token"]) == 2   # the code exchange + one refresh


def test_bad_credential_and_queries_give_salesforce_errors(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    server = sandbox_factory("salesforce", scale=50)
    store_secret("local:sf-revoked", json.dumps({"access_token": "00Dbogus"}))
    monkeypatch.setenv("SF_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    bad = connect_sandbox(server, "sf-revoked", objects=["contacts"],
                          auth={"kind": "oauth2", "secret": "local:sf-revoked", "client_id": DEFAULT_CLIENT_ID,
                                "client_secret": "env:SF_CLIENT_SECRET", "redirect_uri": DEFAULT_REDIRECT_URI})
    result = sync(bad)
    assert result.status == "failed" and result.error.error_class == ErrorClass.AUTH_EXPIRED
    assert "provider=salesforce" in str(result.error) and "What to do" in str(result.error)
    headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['salesforce']}"}
    for soql, code in (("SELEC Id FROM Contact", "MALFORMED_QUERY"), ("SELECT Nope FROM Contact", "INVALID_FIELD"),
                       ("SELECT Id FROM Contact WHERE SystemModstamp > '2025-01-01'", "INVALID_FIELD"),
                       ("SELECT Id FROM Widget", "INVALID_TYPE")):
        answer = requests.get(server.base_url + f"{API}/query", params={"q": soql}, headers=headers, timeout=30)
        assert answer.status_code == 400 and answer.json()[0]["errorCode"] == code
    answer = requests.get(server.base_url + f"{API}/query", headers=headers, timeout=30, params={
        "q": "SELECT Id, Name, Account.Name FROM Contact WHERE Account.Name LIKE '%Labs%' AND "
             "(LastName IN ('Hopper', 'Turing') OR CreatedDate < 2025-01-01T00:00:00Z) ORDER BY Name DESC LIMIT 5"})
    body = answer.json()
    assert answer.status_code == 200 and body["done"] and len(body["records"]) <= 5
    assert all("Labs" in r["Account"]["Name"] for r in body["records"])
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_official_sdk_works_unmodified(data_dir, sandbox_factory):
    server = sandbox_factory("salesforce", scale=2300, tls=True)
    session = requests.Session()
    session.verify = str(server.cert_path)
    session.trust_env = False   # a REQUESTS_CA_BUNDLE in the environment would override session.verify
    token = oauth_tokens(server)
    sf = simple_salesforce.Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                                      version="62.0", session=session)
    first = sf.query("SELECT Id, LastName, Account.Name FROM Contact ORDER BY Id")
    assert first["totalSize"] == 2300 and not first["done"] and len(first["records"]) == 2000
    everything = sf.query_all("SELECT Id, LastName FROM Contact")
    assert everything["totalSize"] == 2300 and len(everything["records"]) == 2300
    contact_id = everything["records"][5]["Id"]
    assert sf.Contact.get(contact_id)["Id"] == contact_id
    assert sf.Contact.update(contact_id, {"Title": "Chief Sandbox Officer"}) == 204
    records = session.get(f"{server.base_url}/_sandbox/truth/Contact", timeout=30).json()["records"]
    assert next(r for r in records if r["id"] == contact_id)["record"]["Title"] == "Chief Sandbox Officer"
    assert sf.api_usage["api-usage"].used >= 3   # Sforce-Limit-Info parsed by the SDK


@pytest.mark.parametrize("all_or_none", [False, True])
def test_upserts_by_external_id_with_injected_failures(data_dir, sandbox_factory, all_or_none):
    server = sandbox_factory("salesforce", scale=20)
    base = server.base_url + API
    headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['salesforce']}"}
    single = requests.patch(f"{base}/sobjects/Contact/External_Id__c/ext-1", json={"LastName": "Single"},
                            headers=headers, timeout=30)
    assert single.status_code == 201 and single.json()["created"] is True
    again = requests.patch(f"{base}/sobjects/Contact/External_Id__c/ext-1", json={"LastName": "Again"},
                           headers=headers, timeout=30)
    assert again.status_code == 200 and again.json()["id"] == single.json()["id"]
    requests.post(server.base_url + "/_sandbox/salesforce/write_failures", json={"rules": [
        {"object": "Contact", "field": "LastName", "value": "Rejected", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
         "message": "No rejects", "fields": ["LastName"]}]}, timeout=30).raise_for_status()
    records = [{"attributes": {"type": "Contact"}, "External_Id__c": f"ext-{n}", "LastName": name}
               for n, name in ((1, "Updated"), (2, "Rejected"), (3, "Created"))]
    answer = requests.patch(f"{base}/composite/sobjects/Contact/External_Id__c", headers=headers, timeout=30,
                            json={"allOrNone": all_or_none, "records": records})
    results = answer.json()
    assert answer.status_code == 200 and len(results) == 3
    assert results[1]["success"] is False and results[1]["errors"][0]["statusCode"] == \
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    if all_or_none:
        assert not any(r["success"] for r in results)
        assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    else:
        assert results[0] == {"id": single.json()["id"], "success": True, "errors": [], "created": False}
        assert results[2]["success"] and results[2]["created"]
        writes = requests.get(server.base_url + "/_sandbox/salesforce/writes", timeout=30).json()["writes"]
        assert [w["success"] for w in writes if w["operation"] == "upsert"][-3:] == [True, False, True]
    missing = requests.post(f"{base}/sobjects/Contact", json={"FirstName": "No"}, headers=headers, timeout=30)
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


# The fault, kill and storm suites' row for this provider (tests/reliability/providers.py).
RELIABILITY = ProviderCase(
    own_truth("_assert_equals_truth"),
    {name: CRUD for name in ("Account", "Contact", "Lead", "Opportunity", "Task", "Event", "Note")},
    scale=180, connect=oauth_connect("salesforce"))
