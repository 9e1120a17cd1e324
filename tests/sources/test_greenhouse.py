"""Greenhouse Harvest v3 end to end: sandbox over HTTP -> dlt -> raw_greenhouse -> dbt -> canonical ats_* tables."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.pipeline import sync
from canonry.sandbox.greenhouse import DEFAULT_WEBHOOK_SECRET, PER_PAGE_MAX
from canonry.sandbox.greenhouse.custom_fields import CUSTOM_FIELDS
from canonry.transform import build, run_dbt
from expectations.gate import run_gate, tables_fed_by
from sources.greenhouse.helpers import pages
from sources.greenhouse.settings import OBJECTS as ALL_OBJECTS
from sources.greenhouse.settings import PER_PAGE
from sources.greenhouse.settings import RECORD_OBJECTS as OBJECTS
from tests.ats_truth import greenhouse_hired_at
from tests.helpers import canonical, clear_request_log, mutate, query, request_log, truth
from tests.pg import WAREHOUSES
from tests.reliability.providers import ProviderCase, client_credentials_connect, own_truth

SCALE = 200
ATS_MODELS = ["+ats_candidates", "+ats_applications", "+ats_jobs", "+ats_job_stages", "+ats_interviews",
              "+ats_offers", "+ats_departments", "+ats_offices", "+ats_users"]
TABLES = {"candidates": "ats_candidates", "applications": "ats_applications", "jobs": "ats_jobs",
          "job_stages": "ats_job_stages", "scheduled_interviews": "ats_interviews", "offers": "ats_offers",
          "departments": "ats_departments", "offices": "ats_offices", "users": "ats_users"}
ID_COLUMNS = {"ats_candidates": "candidate_id", "ats_applications": "application_id", "ats_jobs": "job_id",
              "ats_job_stages": "job_stage_id", "ats_interviews": "interview_id", "ats_offers": "offer_id",
              "ats_departments": "department_id", "ats_offices": "office_id", "ats_users": "user_id"}
APPLICATION_STATUS = {"active": "ACTIVE", "rejected": "REJECTED", "hired": "HIRED", "converted": "CONVERTED"}
OFFER_STATUS = {"accepted": "SIGNED", "rejected": "DENIED", "deprecated": "DEPRECATED"}
# Custom fields (opt-in object `custom_fields`, read by the main world): records' field type, canonical kinds.
CUSTOM_FIELD_TYPES = {"candidates": "candidate", "applications": "application", "jobs": "job"}
CANONICAL_KIND = {"short_text": "text", "number": "number", "date": "date", "single_select": "enum",
                  "multi_select": "multi_select", "currency": "currency", "user": "user_reference"}


def cid(connection_id: str, remote_id) -> str | None:
    """The canonical id (md5 of connection_id ':' remote_id), as dbt computes it."""
    if remote_id is None:
        return None
    return hashlib.md5(f"{connection_id}:{remote_id}".encode()).hexdigest()


def expected_fields(object_name: str, record: dict, connection_id: str) -> dict:
    """Key canonical fields a sandbox record must produce."""
    if object_name == "candidates":
        return {"first_name": record["first_name"], "last_name": record["last_name"], "title": record["title"],
                "company": record["company"],
                "emails": [e["value"] for e in record["email_addresses"]],
                "phones": [p["value"] for p in record["phone_numbers"]]}
    if object_name == "applications":
        return {"candidate_id": cid(connection_id, record["candidate_id"]),
                "job_id": cid(connection_id, record["job_id"]),
                "current_stage_id": cid(connection_id, record["current_stage_id"]),
                "status": APPLICATION_STATUS[record["status"]],
                "credited_to_user_id": cid(connection_id, record["credited_to_id"])}
    if object_name == "jobs":
        return {"name": record["name"], "code": record["requisition_id"], "status": record["status"].upper(),
                "department_ids": [cid(connection_id, d) for d in record["department_ids"]]}
    if object_name == "job_stages":
        return {"name": record["name"], "stage_order": record["sort_order"],
                "job_id": cid(connection_id, record["job_id"])}
    if object_name == "scheduled_interviews":
        return {"location": record["location"], "application_id": cid(connection_id, record["application_id"]),
                "status": record["status"].upper(),
                "interviewer_user_ids": [cid(connection_id, i["user_id"]) for i in record["interviewers"]]}
    if object_name == "offers":
        status = OFFER_STATUS.get(record["status"]) or ("SENT" if record["sent_on"] else "DRAFT")
        return {"status": status, "application_id": cid(connection_id, record["application_id"]),
                "start_date": record["starts_on"]}
    if object_name == "departments":
        return {"name": record["name"], "parent_department_id": cid(connection_id, record["parent_id"])}
    if object_name == "offices":
        return {"name": record["name"], "location": record["location"]["name"]}
    return {"last_name": record["last_name"], "email": record["primary_email_address"],
            "is_disabled": record["disabled"]}


def actual_fields(object_name: str, row: dict, wanted: dict) -> dict:
    out = {}
    for key in wanted:
        value = row[key]
        if key in ("emails", "phones"):
            value = [item["value"] for item in json.loads(value)]
        elif key in ("department_ids", "interviewer_user_ids"):
            value = json.loads(value)
        elif key == "start_date":
            value = value.isoformat()
        out[key] = value
    return out


def assert_hired_at_equals_truth(server) -> None:
    offers = [o["record"] for o in truth(server, "offers") if not o["deleted"]]
    rows = canonical("ats_applications", "greenhouse")
    alive = [a["record"] for a in truth(server, "applications") if not a["deleted"]]
    assert any(a["status"] == "hired" for a in alive)
    for application in alive:
        assert rows[str(application["id"])]["hired_at"] == greenhouse_hired_at(application, offers), application["id"]


def assert_equals_truth(server, connection_id: str, seen_before: dict[str, set[str]] | None = None) -> None:
    """Alive sandbox records == canonical rows not deleted, field by field; deleted rows are truly deleted."""
    for object_name, table in TABLES.items():
        records = truth(server, object_name)
        alive = {r["id"]: r["record"] for r in records if not r["deleted"]}
        deleted = {r["id"] for r in records if r["deleted"]}
        rows = canonical(table, "greenhouse")
        live_rows = {k: v for k, v in rows.items() if not v["is_deleted"]}
        assert set(live_rows) == set(alive), f"{table}: live ids differ from the sandbox's {object_name}"
        flagged = {k for k, v in rows.items() if v["is_deleted"]}
        assert flagged <= deleted, f"{table}: rows flagged deleted that the sandbox still has"
        if seen_before is not None:
            # Every record we had seen and the provider has since deleted is flagged, with a time.
            assert deleted & seen_before[object_name] <= flagged, f"{table}: deletes not detected"
            assert all(rows[k]["deleted_at"] is not None for k in flagged)
        for remote_id, record in alive.items():
            wanted = expected_fields(object_name, record, connection_id)
            assert actual_fields(object_name, rows[remote_id], wanted) == wanted, f"{table} {remote_id}"
        counts = query(f"select count(*) as n, count(distinct {ID_COLUMNS[table]}) as d from canonical.{table}")[0]
        assert counts["n"] == counts["d"], f"{table} has duplicate ids"
    assert_hired_at_equals_truth(server)


def assert_foreign_keys_resolve() -> None:
    for child, column, parent, parent_id in (
        ("ats_applications", "candidate_id", "ats_candidates", "candidate_id"),
        ("ats_applications", "job_id", "ats_jobs", "job_id"),
        ("ats_applications", "current_stage_id", "ats_job_stages", "job_stage_id"),
        ("ats_interviews", "application_id", "ats_applications", "application_id"),
        ("ats_interviews", "job_stage_id", "ats_job_stages", "job_stage_id"),
        ("ats_offers", "application_id", "ats_applications", "application_id"),
        ("ats_job_stages", "job_id", "ats_jobs", "job_id"),
    ):
        dangling = query(f"""select count(*) as n from canonical.{child} c
                             left join canonical.{parent} p on p.{parent_id} = c.{column}
                             where c.{column} is not null and p.{parent_id} is null""")[0]["n"]
        assert dangling == 0, f"{child}.{column} has {dangling} ids missing from {parent}"


def _expected_custom_value(value_type: str, value, connection_id: str):
    if value_type == "number":
        return float(value)
    if value_type == "currency":
        return {"amount": float(value["amount"]), "currency": value["unit"]}
    if value_type == "user":
        return cid(connection_id, value["user_id"])
    return value


def assert_custom_fields(server, connection_id: str) -> None:
    """Every custom field value of the sandbox is in canonical `custom_fields` under its name_key, with its
    canonical type; every value type appears on every record type."""
    for resource, field_type in CUSTOM_FIELD_TYPES.items():
        rows = canonical(TABLES[resource], "greenhouse")
        value_types = {key: value_type for key, _, value_type, _ in CUSTOM_FIELDS[field_type]}
        kinds = set()
        for record in truth(server, resource):
            if str(record["id"]) not in rows:
                continue
            expected = {}
            for key, value in record["record"]["custom_fields"].items():
                if value not in (None, "", []):
                    expected[key] = {"value": _expected_custom_value(value_types[key], value, connection_id),
                                     "type": CANONICAL_KIND[value_types[key]], "remote_key": key}
                    kinds.add(value_types[key])
            got = rows[str(record["id"])]["custom_fields"]
            assert (got if isinstance(got, dict) else json.loads(got)) == expected, (resource, record["id"])
        assert kinds >= set(CANONICAL_KIND) - {"short_text"} and "short_text" in kinds, (resource, kinds)


def list_calls(log: list[dict]) -> Counter:
    return Counter(r["path"].removeprefix("/v3/") for r in log if r["path"].startswith("/v3/"))


@pytest.fixture
def greenhouse(sandbox_factory, connect_sandbox):
    """(server, connection) with client-credentials auth, the stored secret as JSON in an env var."""
    def make(scale: int = SCALE, connection_id: str = "greenhouse-acme", custom_fields: bool = False, **overrides):
        server = sandbox_factory("greenhouse", scale=scale, custom_fields=custom_fields)
        env = "CANONRY_TEST_" + connection_id.upper().replace("-", "_")
        connection = connect_sandbox(server, connection_id,
                                     auth={"kind": "client_credentials", "secret": f"env:{env}"}, **overrides)
        return server, connection
    return make


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_full_incremental_and_key_scan_equal_sandbox_truth(warehouse, greenhouse):
    server, connection = greenhouse(lookback="10m", custom_fields=True, objects=list(ALL_OBJECTS))
    first = sync(connection)
    assert first.status == "success", first.error
    assert first.records["candidates"] == SCALE
    assert first.records["custom_fields"] == sum(len(v) for v in CUSTOM_FIELDS.values())
    # Models only here (the data tests run in the final build below): keeps the file's runtime down.
    result = run_dbt(["build", "--select", *ATS_MODELS, "--exclude-resource-type", "test"])
    assert result.success, (result.error, result.failures())
    assert_equals_truth(server, connection.id)
    assert_foreign_keys_resolve()
    assert query("select count(distinct tenant_id) as n, min(tenant_id) as t from canonical.ats_candidates")[0] \
        == {"n": 1, "t": "acme"}
    assert_custom_fields(server, connection.id)
    # A custom field renamed at Greenhouse keeps its name_key, and so its canonical key.
    renamed = requests.post(f"{server.base_url}/_sandbox/greenhouse/custom_fields",
                            json={"field_type": "candidate", "name_key": "languages", "name": "Spoken languages"},
                            timeout=10)
    assert renamed.status_code == 200, renamed.text
    seen = {name: {r["id"] for r in truth(server, name) if not r["deleted"]} for name in OBJECTS}

    # Creates, updates and deletes in every object (a deleted candidate takes its applications along).
    changed = {name: mutate(server, name, create=3, update=4, delete=2, seed=11) for name in OBJECTS}
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    log = request_log(server)
    # Incremental: one list call per object (k changes << one page), filtered on updated_at, no token call
    # (the one-hour token is cached), and exactly the changed records came back; the custom field
    # definitions are read whole (one call) and only the renamed one is written again.
    assert list_calls(log) == Counter({name: 1 for name in ALL_OBJECTS})
    assert all("updated_at=gte%7C" in r["query"] and f"per_page={PER_PAGE}" in r["query"]
               for r in log if r["path"].startswith("/v3/") and r["path"] != "/v3/custom_fields")
    assert second.records["custom_fields"] == 1
    assert [r for r in log if r["path"] == "/token"] == []
    alive_now = {name: {r["id"] for r in truth(server, name) if not r["deleted"]} for name in OBJECTS}
    for name in OBJECTS:
        expected = len((set(changed[name]["create"]) | set(changed[name]["update"])) & alive_now[name])
        assert second.records.get(name, 0) == expected, name
    # Without a delete feed, deletions wait for the next key scan (the deleted records are still in raw,
    # not deleted); the key scan below brings them in.
    raw_deleted = query("select count(*) as n from raw_greenhouse.candidates where is_deleted")[0]["n"]
    assert raw_deleted == 0

    # A key scan (forced here; daily by default) lists every record once and flags what disappeared.
    clear_request_log(server)
    third = sync(connection, on_start=lambda runtime: runtime.options.update(force_key_scan=True))
    assert third.status == "success", third.error
    calls = list_calls(request_log(server))
    for name in OBJECTS:
        assert calls[name] == max(1, math.ceil(len(alive_now[name]) / PER_PAGE)), name
        # The previous increment is re-read through the 10-minute look-back and de-duplicated away.
        assert third.records.get(name, 0) == 0, name
        assert third.records[f"{name}_key_scans"] == len(alive_now[name]) + 1
    result = build(ATS_MODELS)
    assert result.success, (result.error, result.failures())
    assert not result.warnings(), "unmapped enum values"
    assert {n.name for n in result.nodes} >= {"greenhouse_unmapped_enum_values"}
    assert_equals_truth(server, connection.id, seen_before=seen)
    assert_foreign_keys_resolve()
    assert_custom_fields(server, connection.id)
    assert query("select label, field_name from staging.stg_greenhouse__custom_fields where remote_key = 'languages'"
                 ) == [{"label": "Spoken languages", "field_name": "languages"}]
    gate = run_gate(tables_fed_by(["greenhouse"]))
    assert set(gate.tables()) == set(TABLES.values()) and gate.success, gate.failed()
    rows = canonical("ats_applications", "greenhouse")
    cascaded = [r["id"] for r in truth(server, "applications") if r["deleted"] and r["id"] in seen["applications"]
                and r["id"] not in changed["applications"]["delete"]]
    assert cascaded, "a deleted candidate's applications disappear with it"
    assert all(rows[i]["is_deleted"] and rows[i]["deleted_at"] is not None for i in cascaded)


def test_full_sync_makes_one_call_per_page_of_500(data_dir, greenhouse):
    server, connection = greenhouse(scale=1_100, connection_id="greenhouse-pages")
    result = sync(connection)
    assert result.status == "success", result.error
    log = request_log(server)
    sizes = {name: len(truth(server, name)) for name in OBJECTS}
    assert list_calls(log) == Counter({name: math.ceil(n / PER_PAGE_MAX) for name, n in sizes.items()})
    assert sum(list_calls(log).values()) == 17
    assert [r["path"] for r in log].count("/token") == 1  # one client-credentials token for the whole run
    for r in log:
        if r["path"].startswith("/v3/"):
            params = parse_qs(r["query"])
            # per_page on the first call only; follow-ups carry the cursor and nothing else.
            assert params == {"per_page": ["500"]} or set(params) == {"cursor"}, r["query"]
    for name, n in sizes.items():
        assert result.records[name] == n


def test_cursor_with_other_parameters_is_a_clear_provider_contract_error(data_dir, greenhouse):
    server, connection = greenhouse(scale=300, connection_id="greenhouse-cursor")
    token = requests.post(f"{server.base_url}/token", auth=("canonry-greenhouse-client",
                                                           "sandbox-greenhouse-client-secret"),
                          data={"grant_type": "client_credentials", "sub": "90000001"}, timeout=10).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600 and token["expires_at"].endswith("Z")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    first = requests.get(f"{server.base_url}/v3/candidates", params={"per_page": 100}, headers=headers, timeout=10)
    assert isinstance(first.json(), list) and len(first.json()) == 100
    assert int(first.headers["X-RateLimit-Remaining"]) < int(first.headers["X-RateLimit-Limit"])
    next_url = first.links["next"]["url"]
    assert set(parse_qs(urlsplit(next_url).query)) == {"cursor"}

    session = ProviderSession("greenhouse", connection.id, auth=lambda r: r.headers.update(headers))
    assert len(session.get_json(next_url)) == 100
    with pytest.raises(CanonryError) as caught:
        session.get_json(next_url + "&per_page=50")
    error = caught.value
    assert error.error_class == ErrorClass.PROVIDER_CONTRACT and error.status == 400
    assert "cursor" in error.detail and "only query parameter" in error.detail
    assert "endpoint=/v3/candidates" in str(error) and "What to do" in str(error)
    # The source's pager never does that: filters and per_page ride on the first request only.
    assert sum(len(p) for p in pages(session, None, f"{server.base_url}/v3/candidates", {"per_page": 120})) == 300
    # Validation errors keep v1's shape.
    bad = requests.get(f"{server.base_url}/v3/candidates", params={"per_page": 501, "updated_at": "since|x"},
                       headers=headers, timeout=10)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"per_page", "updated_at"}


def test_revoked_token_is_reminted_and_bad_client_secret_is_auth_expired(data_dir, greenhouse, connect_sandbox):
    server, connection = greenhouse(scale=60, connection_id="greenhouse-revoke", objects=["candidates", "users"])
    assert sync(connection).status == "success"
    requests.post(f"{server.base_url}/_sandbox/tokens", json={"revoke_all": True}, timeout=10).raise_for_status()
    clear_request_log(server)
    again = sync(connection)
    assert again.status == "success", again.error
    log = request_log(server)
    assert [r["path"] for r in log].count("/token") == 1 and any(r["status"] == 401 for r in log)

    wrong = connect_sandbox(server, "greenhouse-wrong", token=json.dumps(
        {"client_id": "canonry-greenhouse-client", "client_secret": "not-the-real-secret"}),
        auth={"kind": "client_credentials", "secret": "env:CANONRY_TEST_GREENHOUSE_WRONG"})
    failed = sync(wrong)
    assert failed.status == "failed" and failed.error.error_class == ErrorClass.AUTH_EXPIRED
    assert "invalid_client" in str(failed.error) and "not-the-real-secret" not in str(failed.error)


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k: v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_webhooks_are_signed_with_hmac_sha256(data_dir, sandbox_factory):
    server = sandbox_factory("greenhouse", scale=50)
    _Receiver.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        server.state.webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/greenhouse"
        mutate(server, "candidates", update=2, delete=1)
        mutate(server, "applications", create=1)
        mutate(server, "users", update=1)  # no webhook event for user edits
    finally:
        receiver.shutdown()
    deliveries = _Receiver.received
    assert len(deliveries) == 4
    actions = [json.loads(body)["action"] for _, body in deliveries]
    assert sorted(actions) == ["delete_candidate", "new_candidate_application", "update_candidate",
                               "update_candidate"]
    event_ids = set()
    for headers, body in deliveries:
        scheme, _, digest = headers["Signature"].partition(" ")
        assert scheme == "sha256"
        expected = hmac.new(DEFAULT_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(digest, expected)
        tampered = body.replace(b'"action"', b'"acti0n"')
        assert not hmac.compare_digest(digest, hmac.new(DEFAULT_WEBHOOK_SECRET.encode(), tampered,
                                                        hashlib.sha256).hexdigest())
        event_ids.add(headers["Greenhouse-Event-ID"])
        envelope = json.loads(body)
        assert set(envelope) == {"action", "payload"}
    assert len(event_ids) == 4
    deleted = next(json.loads(b) for _, b in deliveries if json.loads(b)["action"] == "delete_candidate")
    assert "deleted_application_ids" in deleted["payload"]["person"]


# The fault, kill and storm suites' row for this provider (tests/reliability/providers.py).
RELIABILITY = ProviderCase(
    own_truth("assert_equals_truth", with_connection=True),
    {name: {"create": 3, "update": 4, "delete": 2} for name in ("candidates", "applications", "jobs")},
    scale=200, connect=client_credentials_connect,
    incremental_on_start=lambda runtime: runtime.options.update(force_key_scan=True),
    # no delete feed: a key scan on every run shows deletes to the kill test's plain re-runs
    connection_overrides={"deletes": {"full_scan_every": "1s"}})
