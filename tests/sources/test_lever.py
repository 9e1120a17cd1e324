"""Lever end to end: sandbox over HTTP (OAuth, rotating refresh tokens) -> dlt -> raw_lever -> dbt ->
canonical ats_* tables, compared with the sandbox's truth row by row."""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import tracemalloc
from collections import defaultdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from canonry.errors import ErrorClass
from canonry.pipeline import sync
from canonry.sandbox.engine import SandboxState
from canonry.sandbox.lever import (
    AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    DEFAULT_SIGNATURE_TOKEN,
    LeverSimulator,
)
from canonry.secrets import resolve_secret, store_secret
from canonry.transform import build
from expectations.gate import run_gate, tables_fed_by
from sources.lever.helpers import verify_webhook
from sources.lever.settings import READ_SCOPES
from tests.ats_truth import lever_hired_at
from tests.helpers import canonical, clear_request_log, lineage, mutate, query, request_log, truth
from tests.pg import WAREHOUSES
from tests.reliability.providers import CRUD, ProviderCase, oauth_connect, own_truth

SCALE = 150          # two opportunity pages; 150 interview + 150 offer reads on the full sync
CONNECTION = "lever-acme"
# The OAuth dance of tests/test_oauth.py (tests/oauth_helpers.py).
OAUTH_DANCE = {"objects": ("postings", "users"),
               "least_scopes": ("offline_access", "confidential:access:admin", "postings:read:admin",
                                "users:read:admin"),
               "checks": (("postings", "postings"), ("users", "users"))}
HIRED_STATUS = {"hired": "HIRED", "non-hired": "REJECTED"}
JOB_STATUS = {"published": "OPEN", "internal": "OPEN", "closed": "CLOSED", "draft": "DRAFT", "pending": "PENDING",
              "rejected": "CLOSED"}


def cid(remote_id: str | None, connection: str = CONNECTION) -> str | None:
    return None if remote_id is None else hashlib.md5(f"{connection}:{remote_id}".encode()).hexdigest()


def ms(value) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def authorize(server, scopes: str = "") -> dict:
    """The authorization-code flow against the sandbox's Auth0-style endpoints; returns the token body."""
    scope = scopes or " ".join(["offline_access", *READ_SCOPES.values()])
    answer = requests.get(f"{server.base_url}/oauth/authorize", allow_redirects=False, timeout=10, params={
        "client_id": DEFAULT_CLIENT_ID, "redirect_uri": DEFAULT_REDIRECT_URI, "response_type": "code",
        "state": "st-123", "audience": AUDIENCE, "scope": scope, "prompt": "consent"})
    assert answer.status_code == 302, answer.text
    query_ = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query_["state"] == ["st-123"]
    token = requests.post(f"{server.base_url}/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": query_["code"][0], "redirect_uri": DEFAULT_REDIRECT_URI,
        "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, "audience": AUDIENCE})
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["expires_in"] == 3600 and body["refresh_token"]
    return body


def oauth_connection(server, connect_sandbox, monkeypatch, name: str = CONNECTION, *, expired: bool = False,
                     refresh_token: str | None = None, **overrides):
    """A connection whose credential is a token set in the local secret store."""
    issued = authorize(server)
    token = {"access_token": issued["access_token"], "refresh_token": refresh_token or issued["refresh_token"],
             "expires_at": time.time() + (-60 if expired else issued["expires_in"]),
             "token_endpoint": f"{server.base_url}/oauth/token", "client_id": DEFAULT_CLIENT_ID, "audience": AUDIENCE}
    store_secret(f"local:{name}", json.dumps(token))
    monkeypatch.setenv("LEVER_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    auth = {"kind": "oauth2", "secret": f"local:{name}", "client_secret": "env:LEVER_CLIENT_SECRET",
            "client_id": DEFAULT_CLIENT_ID, "redirect_uri": DEFAULT_REDIRECT_URI}
    return connect_sandbox(server, name, auth=auth, **overrides)


# -- truth comparison ---------------------------------------------------------------------------
def _no_duplicates(table: str, id_column: str) -> None:
    row = query(f"select count(*) as n, count(distinct {id_column}) as d from canonical.{table} "
                "where provider = 'lever'")[0]
    assert row["n"] == row["d"], f"{table} has duplicate ids"


LEVER_KIND = {"text": "text", "textarea": "text", "date": "date", "dropdown": "enum", "multiple-choice": "enum",
              "multiple-select": "multi_select", "currency": "currency", "yes-no": "text"}


def _expected_question_value(field: dict):
    if field["type"] == "date":
        return datetime.fromtimestamp(field["value"] / 1000, tz=UTC).date().isoformat()
    if field["type"] == "currency":
        return {"amount": field["value"]["value"], "currency": field["value"]["currency"]}
    return field["value"]


def assert_custom_questions(server, first_texts: dict[str, str]) -> None:
    """Every answered custom question of an application is in its ats_applications row's `custom_fields`,
    named by the snake_case of the question's first text (`first_texts`: id -> text), typed, with its id."""
    rows = canonical("ats_applications", "lever")
    kinds = set()
    for record in truth(server, "opportunities"):
        if record["id"] not in rows or record["deleted"]:
            continue
        expected = {}
        for application in record["record"]["applications"]:
            for form in application.get("customQuestions", []):
                for field in form["fields"]:
                    if field["value"] in (None, "", []):
                        continue
                    name = "_".join("".join(c if c.isalnum() else " " for c in first_texts[field["id"]].lower()).split())
                    expected[name] = {"value": _expected_question_value(field), "type": LEVER_KIND[field["type"]],
                                      "remote_key": field["id"]}
                    kinds.add(field["type"])
        got = rows[record["id"]]["custom_fields"]
        assert (got if isinstance(got, dict) else json.loads(got)) == expected, record["id"]
    assert kinds == set(LEVER_KIND), kinds


def _live_present_and_nothing_else(rows: dict[str, dict], expected: list[dict]) -> None:
    """Interviews and offers are read from their opportunity's list: one created and deleted between two
    reads of that list (the kill test mutates while syncing) was never shown to a sync and cannot be a row.
    Every live one must be a row; every row must be one the sandbox has."""
    live = {e["id"] for e in expected if not e["deleted"]}
    assert live <= set(rows), f"missing live: {sorted(live - set(rows))[:5]}"
    assert set(rows) <= {e["id"] for e in expected}, f"unknown: {sorted(set(rows) - {e['id'] for e in expected})[:5]}"


def assert_equals_truth(server) -> None:
    opportunities = truth(server, "opportunities")
    reasons = {r["id"]: r["record"] for r in truth(server, "archive_reasons")}

    # ats_applications: one per opportunity.
    rows = canonical("ats_applications", "lever")
    assert set(rows) == {o["id"] for o in opportunities}
    for opp in opportunities:
        record, row = opp["record"], rows[opp["id"]]
        assert row["application_id"] == cid(opp["id"])
        assert row["is_deleted"] == opp["deleted"], opp["id"]
        assert (row["deleted_at"] is not None) == opp["deleted"]
        if opp["deleted"]:
            # The deleted feed gives stubs: fields are those last seen alive (an edit made between the
            # last sync and the delete was never visible through the API).
            continue
        assert row["candidate_id"] == cid(record["contact"])
        posting = record["applications"][0]["posting"] if record["applications"] else None
        assert row["job_id"] == cid(posting)
        assert row["current_stage_id"] == cid(record["stage"])
        archived = record["archived"]
        expected = "ACTIVE" if archived is None else HIRED_STATUS[reasons[archived["reason"]]["status"]]
        assert row["status"] == expected, opp["id"]
        if expected == "REJECTED":
            assert ms(row["rejected_at"]) == archived["archivedAt"]
            assert row["reject_reason"] == reasons[archived["reason"]]["text"]
        else:
            assert row["rejected_at"] is None and row["reject_reason"] is None
        assert row["hired_at"] == lever_hired_at(record, reasons), opp["id"]
        assert row["source"] == record["sources"][0]
        assert row["credited_to_user_id"] == cid(record["owner"])
        assert ms(row["remote_updated_at"]) == record["updatedAt"]
    _no_duplicates("ats_applications", "application_id")

    # ats_candidates: one per contact, de-duplicated across its opportunities. An opportunity deleted before
    # any sync listed it is known only from the deleted feed's stub (`{id, deletedAt}`: no contact), so its
    # contact cannot be a candidate unless another of its opportunities was seen (the kill test deletes
    # while the first sync runs).
    listed = {r["remote_id"] for r in query("select distinct remote_id from raw_lever.opportunities "
                                            "where not is_deleted")}
    by_contact: dict[str, list[dict]] = defaultdict(list)
    for opp in opportunities:
        if not opp["deleted"] or opp["id"] in listed:
            by_contact[opp["record"]["contact"]].append(opp)
    rows = canonical("ats_candidates", "lever")
    assert set(rows) == set(by_contact)
    assert len(by_contact) < len(opportunities), "some contacts have several opportunities"
    for contact, opps in by_contact.items():
        row = rows[contact]
        live = [o for o in opps if not o["deleted"]]
        assert row["is_deleted"] == (not live), contact
        if not live:
            continue
        record = max(live, key=lambda o: o["record"]["updatedAt"])["record"]
        first, _, last = record["name"].partition(" ")
        assert (row["first_name"], row["last_name"]) == (first, last)
        assert row["title"] == record["headline"]
        assert json.loads(row["emails"]) == [{"value": e, "type": "OTHER"} for e in record["emails"]]
        phone_types = {"mobile": "MOBILE", "home": "HOME", "work": "WORK", "skype": "SKYPE", "other": "OTHER"}
        assert json.loads(row["phones"]) == [{"value": p["value"], "type": phone_types[p["type"]]}
                                             for p in record["phones"]]
        assert json.loads(row["locations"]) == ([record["location"]] if record["location"] else [])
        assert json.loads(row["tags"]) == sorted({t for o in live for t in o["record"]["tags"]})
        assert row["is_private"] == any(o["record"]["confidentiality"] == "confidential" for o in opps)
    _no_duplicates("ats_candidates", "candidate_id")

    # ats_jobs (postings) and the departments/offices derived from their categories.
    postings = truth(server, "postings")
    rows = canonical("ats_jobs", "lever")
    assert set(rows) == {p["id"] for p in postings}
    departments, offices = {}, set()
    for posting in postings:
        record, row = posting["record"], rows[posting["id"]]
        assert row["name"] == record["text"] and row["type"] == "POSTING"
        assert row["status"] == JOB_STATUS[record["state"]]
        assert row["code"] == (record["requisitionCodes"][0] if record["requisitionCodes"] else None)
        assert json.loads(row["hiring_manager_ids"]) == [cid(record["hiringManager"])]
        category = record["categories"]
        team_key = f"team:{category['department']}/{category['team']}"
        assert json.loads(row["department_ids"]) == [cid(f"department:{category['department']}"), cid(team_key)]
        departments[f"department:{category['department']}"] = None
        departments[team_key] = cid(f"department:{category['department']}")
        offices |= {category["location"], *category["allLocations"]}
    _no_duplicates("ats_jobs", "job_id")
    rows = canonical("ats_departments", "lever")
    assert {k: r["parent_department_id"] for k, r in rows.items()} == departments
    assert set(canonical("ats_offices", "lever")) == {f"location:{name}" for name in offices}

    # ats_job_stages: org-wide, in pipeline order.
    stages = truth(server, "stages")
    rows = canonical("ats_job_stages", "lever")
    assert [(rows[s["id"]]["name"], rows[s["id"]]["stage_order"], rows[s["id"]]["job_id"]) for s in stages] == \
        [(s["record"]["text"], n, None) for n, s in enumerate(stages, start=1)]

    # ats_interviews / ats_offers: deleted with their opportunity or when gone from its list.
    now_ms = time.time() * 1000
    rows = canonical("ats_interviews", "lever")
    expected_interviews = truth(server, "interviews")
    _live_present_and_nothing_else(rows, expected_interviews)
    for interview in expected_interviews:
        if interview["id"] not in rows:
            continue   # deleted before any sync saw it (below)
        record, row = interview["record"], rows[interview["id"]]
        assert row["is_deleted"] == interview["deleted"], interview["id"]
        if interview["deleted"]:
            continue
        assert row["application_id"] == cid(record["opportunityId"])
        assert row["job_stage_id"] == cid(record["stage"])
        assert row["organizer_user_id"] == cid(record["user"])
        assert json.loads(row["interviewer_user_ids"]) == [cid(i["id"]) for i in record["interviewers"]]
        assert ms(row["start_at"]) == record["date"]
        assert ms(row["end_at"]) == record["date"] + record["duration"] * 60_000
        end = record["date"] + record["duration"] * 60_000
        status = "OTHER" if record["canceledAt"] else "SCHEDULED" if end > now_ms else \
            "COMPLETE" if record["feedbackForms"] else "AWAITING_FEEDBACK"
        assert row["status"] == status
    _no_duplicates("ats_interviews", "interview_id")
    rows = canonical("ats_offers", "lever")
    expected_offers = truth(server, "offers")
    _live_present_and_nothing_else(rows, expected_offers)
    for offer in expected_offers:
        if offer["id"] not in rows:
            continue
        record, row = offer["record"], rows[offer["id"]]
        assert row["is_deleted"] == offer["deleted"], offer["id"]
        if offer["deleted"]:
            continue
        assert row["application_id"] == cid(record["opportunityId"])
        assert row["status"] == record["status"].upper()
        assert row["creator_user_id"] == cid(record["creator"])
        assert ms(row["sent_at"]) == (record["sentDocument"] or {}).get("uploadedAt")
    _no_duplicates("ats_offers", "offer_id")

    # ats_users.
    roles = {"super admin": "SUPER_ADMIN", "admin": "ADMIN", "team member": "TEAM_MEMBER",
             "limited team member": "LIMITED_TEAM_MEMBER", "interviewer": "INTERVIEWER"}
    rows = canonical("ats_users", "lever")
    users = truth(server, "users")
    assert set(rows) == {u["id"] for u in users}
    for user in users:
        record, row = user["record"], rows[user["id"]]
        assert row["email"] == record["email"]
        assert row["is_disabled"] == (record["deactivatedAt"] is not None)
        assert row["access_role"] == roles[record["accessRole"]]
    _no_duplicates("ats_users", "user_id")

    # Foreign keys resolve to canonical ids (an opportunity deleted before any sync listed it is a deleted
    # application without a candidate: Lever's deleted feed does not say whose it was).
    for sql in (
        """select count(*) as n from canonical.ats_applications a left join canonical.ats_candidates c
           on c.candidate_id = a.candidate_id where a.provider = 'lever' and c.candidate_id is null
           and not (a.is_deleted and a.candidate_id is null)""",
        """select count(*) as n from canonical.ats_applications a left join canonical.ats_jobs j
           on j.job_id = a.job_id where a.provider = 'lever' and a.job_id is not null and j.job_id is null""",
        """select count(*) as n from canonical.ats_applications a left join canonical.ats_job_stages s
           on s.job_stage_id = a.current_stage_id where a.provider = 'lever' and s.job_stage_id is null
           and not (a.is_deleted and a.candidate_id is null)""",
        """select count(*) as n from canonical.ats_interviews i left join canonical.ats_applications a
           on a.application_id = i.application_id where i.provider = 'lever' and a.application_id is null""",
        """select count(*) as n from canonical.ats_offers o left join canonical.ats_applications a
           on a.application_id = o.application_id where o.provider = 'lever' and a.application_id is null""",
        """select count(*) as n from canonical.ats_interviews i left join canonical.ats_users u
           on u.user_id = i.organizer_user_id where i.provider = 'lever' and u.user_id is null""",
    ):
        assert query(sql)[0]["n"] == 0, sql


def _calls(log: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for entry in log:
        path = entry["path"]
        if path.startswith("/v1/opportunities/") and path.count("/") == 4:
            out[path.rsplit("/", 1)[1]].append(entry)   # interviews | offers (per opportunity)
        elif path.startswith("/v1/"):
            out[path].append(entry)
    return out


# -- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_full_then_incremental_equals_truth_with_minimal_calls(warehouse, sandbox_factory, connect_sandbox,
                                                               monkeypatch):
    # Applications carry Lever's custom questions (inline with expand=applications: no extra call).
    server = sandbox_factory("lever", scale=SCALE, custom_fields=True)
    connection = oauth_connection(server, connect_sandbox, monkeypatch)
    first_texts = {f["id"]: f["text"] for f in server.simulator.custom.fields}
    clear_request_log(server)

    first = sync(connection)
    assert first.status == "success", first.error
    assert first.records["opportunities"] == SCALE
    assert build(lineage("lever")).success
    assert_custom_questions(server, first_texts)

    # Full sync: ceil(N/100) list calls per list object at limit=100, plus exactly one interviews and
    # one offers read per opportunity (Lever has no org-wide list for them), one deleted-feed read.
    calls = _calls(request_log(server))
    postings = len(truth(server, "postings"))
    assert len(calls["/v1/opportunities"]) == math.ceil(SCALE / 100)
    assert all("limit=100" in c["query"] and "confidentiality=all" in c["query"] and "expand=applications"
               in c["query"] for c in calls["/v1/opportunities"])
    assert len(calls["/v1/postings"]) == math.ceil(postings / 100)
    assert len(calls["interviews"]) == SCALE and len(calls["offers"]) == SCALE
    assert len({c["path"] for c in calls["interviews"]}) == SCALE
    assert [len(calls[p]) for p in ("/v1/opportunities/deleted", "/v1/users", "/v1/stages",
                                    "/v1/archive_reasons")] == [1, 1, 1, 1]
    assert all(c["status"] == 200 for group in calls.values() for c in group)
    assert_equals_truth(server)

    # A question's text edited at Lever (its id stays): the canonical key stays the first text's.
    relocation = next(i for i, t in first_texts.items() if t == "Open to relocation")
    edited = requests.post(f"{server.base_url}/_sandbox/lever/custom_fields",
                           json={"id": relocation, "text": "Willing to relocate?"}, timeout=10)
    assert edited.status_code == 200, edited.text

    # A random sample changes in the sandbox, then an incremental sync.
    started_ms = int(time.time() * 1000)
    changed = mutate(server, "opportunities", create=4, update=8, delete=3, seed=11)
    mutate(server, "interviews", create=3, update=3, delete=2, seed=12)
    mutate(server, "offers", create=2, update=2, delete=1, seed=13)
    mutate(server, "postings", create=1, update=2, seed=14)
    mutate(server, "users", create=1, update=2, seed=15)
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    built = build(lineage("lever"))
    assert built.success
    # Every Lever enum value is mapped by a seed (the warn-severity test counts unmapped ones).
    assert {n.name: n.status for n in built.nodes}["lever_unmapped_enum_values"] == "pass"
    assert_equals_truth(server)
    deleted_rows = canonical("ats_applications", "lever")
    assert all(deleted_rows[i]["is_deleted"] for i in changed["delete"])
    # Re-read opportunities carry the new text: the label follows it, the key and values do not move.
    assert_custom_questions(server, first_texts)
    assert query("select label, field_name from staging.stg_lever__custom_questions where remote_key = ?",
                 [relocation]) == [{"label": "Willing to relocate?", "field_name": "open_to_relocation"}]

    # Incremental cost is proportional to the changes: one filtered list page, then one interviews and
    # one offers read for exactly the opportunities that changed (directly or through a child).
    calls = _calls(request_log(server))
    listing = calls["/v1/opportunities"]
    assert len(listing) == 1 and "updated_at_start=" in listing[0]["query"]
    touched = {o["id"] for o in truth(server, "opportunities") if not o["deleted"] and o["updated_at"] >= started_ms}
    assert {c["path"].split("/")[3] for c in calls["interviews"]} == touched
    assert len(calls["interviews"]) == len(touched) == len(calls["offers"])
    assert len(touched) <= 4 + 8 * 2 + 3 + 3 + 2 + 2 + 1 + 1  # creates + updates (+ a sibling) + child changes
    total = sum(len(group) for group in calls.values())
    assert total == 2 * len(touched) + 6, {k: len(v) for k, v in calls.items()}
    assert "updated_at_start=" in calls["/v1/postings"][0]["query"]
    assert "deleted_at_start=" in calls["/v1/opportunities/deleted"][0]["query"]

    # The GE gate covers every table Lever feeds, and passes.
    tables = tables_fed_by(["lever"])
    assert set(tables) == {"ats_candidates", "ats_applications", "ats_jobs", "ats_job_stages", "ats_interviews",
                           "ats_offers", "ats_users", "ats_departments", "ats_offices"}
    gate = run_gate(tables)
    assert gate.success, [(c.table, c.expectation, c.column, c.observed) for c in gate.failed()]
    assert set(gate.tables()) == set(tables)


def test_dead_refresh_token_fails_run_as_auth_expired(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    server = sandbox_factory("lever", scale=20)
    connection = oauth_connection(server, connect_sandbox, monkeypatch, "lever-dead", expired=True,
                                  refresh_token="lv-rt-already-used", objects=["users"])
    result = sync(connection)
    assert result.status == "failed"
    assert result.error.error_class == ErrorClass.AUTH_EXPIRED
    assert result.error.connection_state == "needs_reauth"
    message = str(result.error)
    assert "invalid_grant" in message and "provider=lever" in message and "canonry connect" in message
    assert "lv-rt-already-used" not in message
    errors = query("select error_class, provider from ops.sync_errors")
    assert errors[-1] == {"error_class": "auth_expired", "provider": "lever"}
    assert not [r for r in request_log(server) if r["path"].startswith("/v1/")], "no API call without a token"


def test_refresh_rotates_tokens_and_the_used_one_is_dead(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    server = sandbox_factory("lever", scale=20)
    connection = oauth_connection(server, connect_sandbox, monkeypatch, "lever-rotate", expired=True,
                                  objects=["users", "stages"])
    before = json.loads(resolve_secret("local:lever-rotate"))
    assert sync(connection).status == "success"
    after = json.loads(resolve_secret("local:lever-rotate"))
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    assert after["expires_at"] > time.time() + 3000

    # The used refresh token is dead at the sandbox (Auth0 answers 403 invalid_grant) ...
    reuse = requests.post(after["token_endpoint"], timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": before["refresh_token"], "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET, "audience": AUDIENCE})
    assert reuse.status_code == 403 and reuse.json()["error"] == "invalid_grant"
    # ... and the stored (rotated) one still refreshes: force expiry and sync again.
    store_secret("local:lever-rotate", json.dumps({**after, "expires_at": time.time() - 1}))
    assert sync(connection).status == "success"
    assert json.loads(resolve_secret("local:lever-rotate"))["refresh_token"] not in (after["refresh_token"],
                                                                                     before["refresh_token"])
    # An authorize request without Lever's audience is refused.
    refused = requests.get(f"{server.base_url}/oauth/authorize", allow_redirects=False, timeout=10, params={
        "client_id": DEFAULT_CLIENT_ID, "redirect_uri": DEFAULT_REDIRECT_URI, "response_type": "code"})
    assert refused.status_code == 400 and refused.json()["error"] == "access_denied"


def test_webhooks_are_signed_in_levers_format(sandbox_factory):
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        server = sandbox_factory("lever", scale=30)
        server.state.webhook_url = f"http://127.0.0.1:{httpd.server_address[1]}/lever"
        created = mutate(server, "opportunities", create=1)["create"][0]
        deleted = mutate(server, "opportunities", delete=1, seed=3)["delete"][0]
        mutate(server, "interviews", create=1, seed=4)
        deadline = time.monotonic() + 10
        while len(received) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        httpd.shutdown()
    events = {body["event"]: body for body in received}
    assert set(events) == {"applicationCreated", "candidateDeleted", "interviewCreated"}
    assert events["applicationCreated"]["data"]["opportunityId"] == created
    assert events["candidateDeleted"]["data"]["opportunityId"] == deleted
    for body in received:
        assert set(body) == {"triggeredAt", "event", "token", "signature", "data"}
        assert isinstance(body["triggeredAt"], int) and body["triggeredAt"] > 1_700_000_000_000
        assert verify_webhook(body, DEFAULT_SIGNATURE_TOKEN)
        assert not verify_webhook(body, "another-webhook's-signature-token")
        assert not verify_webhook({**body, "triggeredAt": body["triggeredAt"] + 1}, DEFAULT_SIGNATURE_TOKEN)


def test_api_contract_paging_limits_errors_and_rate_limit(sandbox_factory):
    server = sandbox_factory("lever", scale=250)
    auth = ("sandbox-lever-api-key", "")
    url = f"{server.base_url}/v1/opportunities"
    seen, offset, pages = [], None, 0
    while True:
        body = requests.get(url, auth=auth, timeout=10, params={"limit": 100, "confidentiality": "all",
                                                                **({"offset": offset} if offset else {})}).json()
        seen += [o["id"] for o in body["data"]]
        pages += 1
        if not body["hasNext"]:
            assert "next" not in body
            break
        offset = body["next"]
    assert pages == 3 and len(seen) == len(set(seen)) == 250
    hidden = requests.get(url, auth=auth, timeout=10, params={"limit": 100}).json()
    assert all(o["confidentiality"] == "non-confidential" for o in hidden["data"])
    too_big = requests.get(url, auth=auth, timeout=10, params={"limit": 101})
    assert too_big.status_code == 400 and set(too_big.json()) == {"code", "message"}
    bad_key = requests.get(url, auth=("nope", ""), timeout=10)
    assert bad_key.status_code == 401 and bad_key.json()["code"] == "UnauthorizedError"
    statuses = [requests.get(f"{server.base_url}/v1/stages", auth=auth, timeout=10) for _ in range(30)]
    limited = [r for r in statuses if r.status_code == 429]
    assert 5 <= len(limited) <= 20, "bursts of 20 pass, then 429"
    assert set(limited[0].json()) == {"code", "message"}


def test_a_million_records_cost_no_memory():
    tracemalloc.start()
    simulator = LeverSimulator(SandboxState(slug="lever", scale=1_000_000))
    opportunities = simulator.collections["opportunities"]
    last = opportunities.size - 1
    body = simulator.render_opportunity(last, opportunities.get(last))
    interviews = simulator.children_of("interviews", last)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000, f"peak {peak} bytes"
    assert body["id"].endswith(f"{last:012x}") and body["contact"]
    assert all(simulator.collections["interviews"].get(j).record["_opp"] == last for j in interviews)


@pytest.mark.parametrize("index", [0, 3, 4, 149])
def test_contact_and_children_mappings_are_consistent(index):
    simulator = LeverSimulator(SandboxState(slug="lever", scale=SCALE))
    contact = simulator.collections["opportunities"].get(index).record["_contact"]
    assert index in simulator.opportunities_of_contact(contact)
    for kind in ("interviews", "offers"):
        for child in simulator.children_of(kind, index):
            assert simulator.collections[kind].get(child).record["_opp"] == index


# The fault, kill and storm suites' row for this provider (tests/reliability/providers.py).
RELIABILITY = ProviderCase(
    own_truth("assert_equals_truth"),
    {"opportunities": {"create": 4, "update": 8, "delete": 3}, "interviews": CRUD, "offers": CRUD},
    scale=150, connect=oauth_connect("lever"), connection_id="lever-acme")
