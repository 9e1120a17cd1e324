"""What the simulator golden test asks each provider sandbox: every route it serves (list pages and the
pages after them, single reads, search, writes, OAuth token endpoints) and its error paths (401, bad
parameters, unknown paths, 429 or the provider's equivalent), as one script per provider.

A script is a function `(call) -> None`; `call(name, method, path, **requests_kwargs)` sends one request
to a fresh sandbox (seed 7, small scale) and records the answer under `name`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import requests

from canonry.sandbox import DEFAULT_TOKENS

Call = Callable[..., requests.Response]

REDIRECT = "http://127.0.0.1:8765/callback"


def basic(user: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(response: requests.Response) -> str:
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def _oauth_dance(call: Call, prefix: str, authorize: str, token: str, client: tuple[str, str],
                 extra: dict | None = None, basic_client: bool = False, scope: str = "api refresh_token") -> dict:
    """Authorize (auto-approved), exchange the code, refresh; with the usual failures. Returns the tokens."""
    extra = extra or {}
    params = {"client_id": client[0], "redirect_uri": REDIRECT, "response_type": "code", "scope": scope,
              "state": "s1", **extra}
    code = _code(call(f"{prefix}.authorize", "GET", authorize, params=params, allow_redirects=False))
    call(f"{prefix}.authorize.bad_client", "GET", authorize, params={**params, "client_id": "nobody"},
         allow_redirects=False)
    call(f"{prefix}.authorize.bad_redirect", "GET", authorize, params={**params, "redirect_uri": "http://x/cb"},
         allow_redirects=False)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    auth: dict = {}
    if basic_client:
        auth = {"headers": basic(*client)}
    else:
        form.update(client_id=client[0], client_secret=client[1])
    issued = _json(call(f"{prefix}.token.code", "POST", token, data=form, **auth))
    call(f"{prefix}.token.code_reused", "POST", token, data=form, **auth)
    refresh = {"grant_type": "refresh_token", "refresh_token": issued.get("refresh_token") or "none", **extra}
    if not basic_client:
        refresh.update(client_id=client[0], client_secret=client[1])
    refreshed = _json(call(f"{prefix}.token.refresh", "POST", token, data=refresh, **auth))
    call(f"{prefix}.token.bad_grant", "POST", token, data={**form, "grant_type": "password"}, **auth)
    bad_auth = {"headers": basic(client[0], "wrong")} if basic_client else {}
    bad_form = form if basic_client else {**form, "client_secret": "wrong"}
    call(f"{prefix}.token.bad_secret", "POST", token, data=bad_form, **bad_auth)
    return {"issued": issued, "refreshed": refreshed}


# -- Greenhouse ------------------------------------------------------------------------------------
def greenhouse(call: Call) -> None:
    from canonry.sandbox import greenhouse as gh

    client = basic(gh.DEFAULT_CLIENT_ID, gh.DEFAULT_CLIENT_SECRET)
    token = call("token", "POST", "/token", data={"grant_type": "client_credentials", "sub": "90000001"},
                 headers=client).json()["access_token"]
    call("token.no_basic", "POST", "/token", data={"grant_type": "client_credentials"})
    call("token.bad_grant", "POST", "/token", data={"grant_type": "password"}, headers=client)
    call("token.bad_sub", "POST", "/token", data={"grant_type": "client_credentials", "sub": "1"}, headers=client)
    call("token.bad_secret", "POST", "/token", data={"grant_type": "client_credentials"},
         headers=basic(gh.DEFAULT_CLIENT_ID, "wrong"))
    auth = bearer(token)
    for name in gh.RESOURCES:
        response = call(f"list.{name}", "GET", f"/v3/{name}", params={"per_page": 7}, headers=auth)
        for page in range(2):
            link = response.headers.get("link")
            if not link:
                break
            url = link[1:link.index(">")]
            response = call(f"list.{name}.page{page + 2}", "GET", url[url.index("/v3/"):], headers=auth)
        call(f"get.{name}", "GET", f"/v3/{name}/{gh.OFFSETS[name] + 2}", headers=auth)
    call("list.updated_since", "GET", "/v3/candidates",
         params={"updated_at": "gte|2025-01-01T00:00:20Z", "per_page": 4}, headers=auth)
    call("list.range", "GET", "/v3/applications",
         params=[("created_at", "gte|2024-12-02T00:00:00Z"), ("created_at", "lt|2024-12-02T00:00:30Z"),
                 ("candidate_ids", "10000001,10000002")], headers=auth)
    call("list.ids", "GET", "/v3/jobs", params={"ids": "30000001,30000003"}, headers=auth)
    call("list.bad_per_page", "GET", "/v3/jobs", params={"per_page": 900}, headers=auth)
    call("list.bad_filter", "GET", "/v3/jobs", params={"updated_at": "since|yesterday", "ids": "a,b"}, headers=auth)
    call("list.unknown_param", "GET", "/v3/jobs", params={"color": "red"}, headers=auth)
    call("list.cursor_with_params", "GET", "/v3/jobs", params={"cursor": "abc", "per_page": 2}, headers=auth)
    call("list.bad_cursor", "GET", "/v3/jobs", params={"cursor": "!!!"}, headers=auth)
    call("list.unknown_resource", "GET", "/v3/widgets", headers=auth)
    call("get.missing", "GET", "/v3/candidates/1", headers=auth)
    call("unauthorized", "GET", "/v3/candidates")
    call("unauthorized.bad_token", "GET", "/v3/candidates", headers=bearer("nope"))
    call("unknown_path", "GET", "/v3/no/such/path")
    call("wrong_method", "DELETE", "/v3/candidates")


# -- Lever -----------------------------------------------------------------------------------------
def _lever_pages(call: Call, name: str, path: str, params: dict, headers: dict, pages: int = 2) -> dict:
    body = call(name, "GET", path, params=params, headers=headers).json()
    for page in range(pages):
        if not body.get("hasNext"):
            break
        body = call(f"{name}.page{page + 2}", "GET", path, params={**params, "offset": body["next"]},
                    headers=headers).json()
    return body


def lever(call: Call) -> None:
    from canonry.sandbox import lever as lv

    key = basic(DEFAULT_TOKENS["lever"])
    first = _lever_pages(call, "opportunities", "/v1/opportunities", {"limit": 4, "expand": "applications"}, key)
    _lever_pages(call, "opportunities.all", "/v1/opportunities", {"limit": 5, "confidentiality": "all",
                                                                  "archived": "false"}, key)
    _lever_pages(call, "opportunities.since", "/v1/opportunities",
                 {"limit": 3, "updated_at_start": "1735689620000", "updated_at_end": "1735689700000"}, key)
    _lever_pages(call, "opportunities.deleted", "/v1/opportunities/deleted", {"limit": 3}, key)
    opp = first["data"][0]["id"]
    call("opportunity", "GET", f"/v1/opportunities/{opp}", headers=key)
    call("opportunity.expand", "GET", f"/v1/opportunities/{opp}", params={"expand": "applications"}, headers=key)
    for n in range(4):
        opp_id = lv.uid("opportunities", n)
        call(f"interviews.{n}", "GET", f"/v1/opportunities/{opp_id}/interviews", headers=key)
        call(f"offers.{n}", "GET", f"/v1/opportunities/{opp_id}/offers", headers=key)
    _lever_pages(call, "postings", "/v1/postings", {"limit": 2}, key)
    _lever_pages(call, "postings.state", "/v1/postings", {"state": "published", "updated_at_start": "1"}, key)
    _lever_pages(call, "users", "/v1/users", {"limit": 2, "includeDeactivated": "true"}, key)
    _lever_pages(call, "stages", "/v1/stages", {"limit": 3}, key)
    _lever_pages(call, "archive_reasons", "/v1/archive_reasons", {}, key)
    call("bad_limit", "GET", "/v1/postings", params={"limit": 500}, headers=key)
    call("bad_offset", "GET", "/v1/postings", params={"offset": "%%%"}, headers=key)
    call("bad_since", "GET", "/v1/opportunities", params={"updated_at_start": "yesterday"}, headers=key)
    call("bad_deleted_since", "GET", "/v1/opportunities/deleted", params={"deleted_at_start": "x"}, headers=key)
    call("bad_postings_since", "GET", "/v1/postings", params={"updated_at_start": "x"}, headers=key)
    call("opportunity.missing", "GET", "/v1/opportunities/nope", headers=key)
    call("interviews.missing", "GET", "/v1/opportunities/nope/interviews", headers=key)
    call("unauthorized", "GET", "/v1/users")
    call("unauthorized.bad_key", "GET", "/v1/users", headers=basic("wrong"))
    call("unauthorized.bad_bearer", "GET", "/v1/users", headers=bearer("wrong"))
    call("unknown_path", "GET", "/v1/no_such_thing", headers=key)
    call("wrong_method", "POST", "/v1/users", headers=key)
    extra = {"audience": lv.AUDIENCE}
    tokens = _oauth_dance(call, "oauth", "/authorize", "/oauth/token", (lv.DEFAULT_CLIENT_ID, lv.DEFAULT_CLIENT_SECRET),
                          extra, scope="offline_access users:read:admin")
    call("oauth.alias_authorize", "GET", "/oauth/authorize",
         params={"client_id": lv.DEFAULT_CLIENT_ID, "redirect_uri": REDIRECT, "audience": lv.AUDIENCE},
         allow_redirects=False)
    call("oauth.bad_audience", "GET", "/authorize", params={"audience": "x"}, allow_redirects=False)
    call("oauth.bad_response_type", "GET", "/authorize", params={"audience": lv.AUDIENCE, "response_type": "t"},
         allow_redirects=False)
    call("oauth.token_bad_audience", "POST", "/oauth/token", data={"audience": "x", "grant_type": "refresh_token"})
    call("oauth.token_json", "POST", "/oauth/token", data=json.dumps({"grant_type": "client_credentials"}),
         headers={"content-type": "application/json"})
    access = tokens["refreshed"].get("access_token", "")
    call("oauth.bearer_read", "GET", "/v1/stages", headers=bearer(access))
    call("oauth.revoke", "POST", "/oauth/revoke", data={"token": access})
    call("oauth.revoked_read", "GET", "/v1/stages", headers=bearer(access))


# -- Ashby -----------------------------------------------------------------------------------------
def ashby(call: Call) -> None:
    from canonry.sandbox import ashby as ab

    key = basic(DEFAULT_TOKENS["ashby"])
    for spec in ab.SPECS.values():
        if spec.name == "interview_stages":
            continue
        body = call(f"{spec.endpoint}", "POST", f"/{spec.endpoint}", json={"limit": 6}, headers=key).json()
        for page in range(2):
            if not body.get("moreDataAvailable"):
                break
            body = call(f"{spec.endpoint}.page{page + 2}", "POST", f"/{spec.endpoint}",
                        json={"limit": 6, "cursor": body["nextCursor"]}, headers=key).json()
        if body.get("syncToken"):
            call(f"{spec.endpoint}.sync", "POST", f"/{spec.endpoint}", json={"syncToken": body["syncToken"]},
                 headers=key)
        if spec.include_flag if hasattr(spec, "include_flag") else False:
            pass
    call("user.list.deactivated", "POST", "/user.list", json={"includeDeactivated": True, "limit": 3}, headers=key)
    call("department.list.archived", "POST", "/department.list", json={"includeArchived": True}, headers=key)
    plans = call("interviewPlan.list.all", "POST", "/interviewPlan.list", json={}, headers=key).json()
    plan = plans["results"][0]["id"]
    call("interviewStage.list", "POST", "/interviewStage.list", json={"interviewPlanId": plan}, headers=key)
    call("interviewStage.list.missing_plan", "POST", "/interviewStage.list", json={}, headers=key)
    call("application.list.filtered", "POST", "/application.list",
         json={"status": "Active", "jobId": ab.AshbySimulator.__name__, "createdAfter": 1}, headers=key)
    call("candidate.list.bad_limit", "POST", "/candidate.list", json={"limit": "ten"}, headers=key)
    call("candidate.list.bad_cursor", "POST", "/candidate.list", json={"cursor": "@@@"}, headers=key)
    call("candidate.list.bad_sync_token", "POST", "/candidate.list", json={"syncToken": "@@@"}, headers=key)
    call("candidate.list.undeclared_key", "POST", "/candidate.list", json={"limit": 2, "color": "red"}, headers=key)
    call("candidate.list.not_json", "POST", "/candidate.list", data=b"{nope", headers=key)
    call("candidate.list.array_body", "POST", "/candidate.list", json=[1], headers=key)
    call("unknown_endpoint", "POST", "/widget.list", json={}, headers=key)
    call("unauthorized", "POST", "/candidate.list", json={})
    call("forbidden", "POST", "/candidate.list", json={}, headers=basic("wrong"))
    call("unknown_path", "GET", "/candidate.list")
    call("control.get", "GET", "/_sandbox/ashby/control")
    call("control.errors", "POST", "/_sandbox/ashby/control",
         json={"logic_errors": {"offer.list": "some_code"}, "missing_permissions": ["job.list"]})
    call("logic_error", "POST", "/offer.list", json={}, headers=key)
    call("missing_permission", "POST", "/job.list", json={}, headers=key)


# -- HubSpot ---------------------------------------------------------------------------------------
def hubspot(call: Call) -> None:
    from canonry.sandbox import hubspot as hs

    auth = bearer(DEFAULT_TOKENS["hubspot"])
    for name in hs.OBJECT_TYPES:
        body = call(f"list.{name}", "GET", f"/crm/v3/objects/{name}", params={"limit": 4}, headers=auth).json()
        after = body.get("paging", {}).get("next", {}).get("after")
        if after:
            call(f"list.{name}.page2", "GET", f"/crm/v3/objects/{name}", params={"limit": 4, "after": after},
                 headers=auth)
        call(f"get.{name}", "GET", f"/crm/v3/objects/{name}/{hs.OBJECT_TYPES[name][0] + 2}", headers=auth)
    call("list.contacts.props", "GET", "/crm/objects/2026-03/0-1",
         params={"limit": 3, "properties": "email,lifecyclestage,hs_lead_status", "associations": "companies,deals"},
         headers=auth)
    call("list.deals.assoc", "GET", "/crm/v3/objects/deals", params={"limit": 2, "associations": "contacts",
                                                                     "properties": "amount,dealstage"}, headers=auth)
    call("list.archived", "GET", "/crm/v3/objects/contacts", params={"archived": "true"}, headers=auth)
    call("list.bad_limit", "GET", "/crm/v3/objects/contacts", params={"limit": "x"}, headers=auth)
    call("list.zero_limit", "GET", "/crm/v3/objects/contacts", params={"limit": 0}, headers=auth)
    call("list.unknown_type", "GET", "/crm/v3/objects/widgets", headers=auth)
    call("get.missing", "GET", "/crm/v3/objects/contacts/1", headers=auth)
    call("get.props", "GET", "/crm/v3/objects/contacts/100000001", params={"properties": "email",
                                                                          "associations": "companies"}, headers=auth)
    call("batch_read", "POST", "/crm/v3/objects/contacts/batch/read",
         json={"inputs": [{"id": "100000001"}, {"id": "100000003"}, {"id": "9"}], "properties": ["email"]},
         headers=auth)
    call("batch_read.bad", "POST", "/crm/v3/objects/contacts/batch/read", data=b"nope", headers=auth)
    call("associations", "POST", "/crm/v4/associations/contacts/companies/batch/read",
         json={"inputs": [{"id": "100000001"}, {"id": "100000002"}]}, headers=auth)
    call("associations.deals", "POST", "/crm/v4/associations/deals/contacts/batch/read",
         json={"inputs": [{"id": "300000001"}]}, headers=auth)
    call("associations.bad", "POST", "/crm/v4/associations/widgets/contacts/batch/read", json={}, headers=auth)
    search = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                             "value": "2025-01-01T00:00:10Z"}]}],
              "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], "limit": 3,
              "properties": ["email"]}
    body = call("search", "POST", "/crm/v3/objects/contacts/search", json=search, headers=auth).json()
    if body.get("paging"):
        call("search.page2", "POST", "/crm/v3/objects/contacts/search",
             json={**search, "after": body["paging"]["next"]["after"]}, headers=auth)
    call("search.ops", "POST", "/crm/v3/objects/deals/search", headers=auth, json={
        "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "BETWEEN", "value": "1000",
                                       "highValue": "50000"}, {"propertyName": "dealstage", "operator": "IN",
                                                               "values": ["closedwon", "qualifiedtobuy"]}]},
                         {"filters": [{"propertyName": "dealname", "operator": "HAS_PROPERTY"}]}], "limit": 5})
    call("search.bad", "POST", "/crm/v3/objects/deals/search", json={"limit": 500}, headers=auth)
    owners = call("owners", "GET", "/crm/v3/owners", params={"limit": 2}, headers=auth).json()
    if owners.get("paging"):
        call("owners.page2", "GET", "/crm/v3/owners/", params={"limit": 2,
                                                               "after": owners["paging"]["next"]["after"]},
             headers=auth)
    call("owners.archived", "GET", "/crm/v3/owners", params={"archived": "true"}, headers=auth)
    call("pipelines", "GET", "/crm/v3/pipelines/deals", headers=auth)
    call("pipelines.contacts", "GET", "/crm/v3/pipelines/contacts", headers=auth)
    call("properties", "GET", "/crm/v3/properties/contacts", headers=auth)
    call("properties.deals", "GET", "/crm/v3/properties/0-3", headers=auth)
    call("properties.unknown", "GET", "/crm/v3/properties/widgets", headers=auth)
    call("schemas", "GET", "/crm/v3/schemas", headers=auth)
    call("property.relabel.builtin", "PATCH", "/crm/v3/properties/contacts/email", json={"label": "E"}, headers=auth)
    call("property.relabel.bad", "PATCH", "/crm/v3/properties/contacts/email", json={}, headers=auth)
    # writes
    call("create", "POST", "/crm/v3/objects/contacts", json={"properties": {"email": "new@example.com",
                                                                            "firstname": "New"}}, headers=auth)
    call("create.bad_property", "POST", "/crm/v3/objects/contacts", json={"properties": {"nope": "1"}}, headers=auth)
    call("create.bad_body", "POST", "/crm/v3/objects/contacts", data=b"x", headers=auth)
    call("patch", "PATCH", "/crm/v3/objects/contacts/100000002", json={"properties": {"firstname": "Changed"}},
         headers=auth)
    call("patch.by_email", "PATCH", "/crm/v3/objects/contacts/new@example.com", params={"idProperty": "email"},
         json={"properties": {"lastname": "Person"}}, headers=auth)
    call("patch.missing", "PATCH", "/crm/v3/objects/contacts/1", json={"properties": {"firstname": "X"}},
         headers=auth)
    call("batch_create", "POST", "/crm/v3/objects/companies/batch/create",
         json={"inputs": [{"properties": {"name": "Batch Co", "domain": "batch.example"}}]}, headers=auth)
    call("batch_update", "POST", "/crm/v3/objects/companies/batch/update",
         json={"inputs": [{"id": "200000001", "properties": {"name": "Renamed"}}, {"id": "1", "properties": {}}]},
         headers=auth)
    call("batch_upsert", "POST", "/crm/v3/objects/contacts/batch/upsert",
         json={"inputs": [{"id": "up@example.com", "idProperty": "email", "properties": {"firstname": "Up"}}]},
         headers=auth)
    call("batch_archive", "POST", "/crm/v3/objects/deals/batch/archive", json={"inputs": [{"id": "300000004"}]},
         headers=auth)
    call("writes.log", "GET", "/_sandbox/hubspot/writes")
    call("write_failures.set", "POST", "/_sandbox/hubspot/write_failures",
         json={"object": "contacts", "category": "VALIDATION_ERROR", "message": "injected"})
    call("create.injected", "POST", "/crm/v3/objects/contacts", json={"properties": {"email": "f@example.com"}},
         headers=auth)
    call("list.after_writes", "GET", "/crm/v3/objects/contacts", params={"limit": 3, "after": 29}, headers=auth)
    call("unauthorized", "GET", "/crm/v3/objects/contacts")
    call("unauthorized.bad", "GET", "/crm/v3/objects/contacts", headers=bearer("nope"))
    call("unknown_path", "GET", "/crm/v9/nothing/at/all")
    tokens = _oauth_dance(call, "oauth", "/oauth/authorize", "/oauth/v1/token",
                          (hs.DEFAULT_CLIENT_ID, hs.DEFAULT_CLIENT_SECRET), scope="oauth crm.objects.contacts.read")
    call("oauth.v3_token.bad", "POST", "/oauth/v3/token", data={"grant_type": "refresh_token"})
    call("oauth.2026_token.bad", "POST", "/oauth/2026-03/token", data={"grant_type": "nope"})
    access = tokens["refreshed"].get("access_token", "")
    call("oauth.bearer_read", "GET", "/crm/v3/schemas", headers=bearer(access))
    call("oauth.revoke", "POST", "/oauth/2026-03/token/revoke", data={"token": tokens["issued"]["refresh_token"]})
    call("oauth.revoke_v1", "DELETE", f"/oauth/v1/refresh-tokens/{tokens['refreshed'].get('refresh_token')}")


# -- Salesforce ------------------------------------------------------------------------------------
def salesforce(call: Call) -> None:
    from canonry.sandbox import salesforce as sf
    from canonry.sandbox.salesforce import objects as sf_objects

    auth = bearer(DEFAULT_TOKENS["salesforce"])
    d = "/services/data/v62.0"
    call("root", "GET", d, headers=auth)
    small = {**auth, "Sforce-Query-Options": "batchSize=200"}
    for obj in ("Account", "Contact", "Lead", "Opportunity", "User", "Task", "Event", "OpportunityStage"):
        call(f"query.{obj}", "GET", f"{d}/query", params={"q": f"SELECT Id, SystemModstamp FROM {obj} "
                                                                "ORDER BY SystemModstamp LIMIT 5"}, headers=auth)
        call(f"describe.{obj}", "GET", f"{d}/sobjects/{obj}/describe", headers=auth)
    body = call("query.paged", "GET", f"{d}/query/", params={"q": "SELECT Id, Name, Industry FROM Account"},
                headers=small).json()
    if body.get("nextRecordsUrl"):
        call("query.paged.page2", "GET", body["nextRecordsUrl"], headers=small)
        call("query.paged.page2_again", "GET", body["nextRecordsUrl"], headers=small)
    call("query.where", "GET", f"{d}/query", headers=auth, params={
        "q": "SELECT Id, Name, Account.Name FROM Contact WHERE SystemModstamp >= 2025-01-01T00:00:30Z "
             "AND Email != null ORDER BY SystemModstamp ASC LIMIT 4"})
    call("query.count", "GET", f"{d}/query", params={"q": "SELECT COUNT() FROM Opportunity"}, headers=auth)
    call("queryAll", "GET", f"{d}/queryAll", params={"q": "SELECT Id, IsDeleted FROM Account LIMIT 3"},
         headers=auth)
    call("query.missing_q", "GET", f"{d}/query", headers=auth)
    call("query.malformed", "GET", f"{d}/query", params={"q": "SELEKT Id FROM Account"}, headers=auth)
    call("query.bad_field", "GET", f"{d}/query", params={"q": "SELECT Nope FROM Account"}, headers=auth)
    call("query.bad_object", "GET", f"{d}/query", params={"q": "SELECT Id FROM Widget"}, headers=auth)
    call("query_more.bad_locator", "GET", f"{d}/query/01gXXXX-2000", headers=auth)
    call("sobjects", "GET", f"{d}/sobjects", headers=auth)
    call("describe.unknown", "GET", f"{d}/sobjects/Widget/describe/", headers=auth)
    call("limits", "GET", f"{d}/limits", headers=auth)
    call("record_count", "GET", f"{d}/limits/recordCount", params={"sObjects": "Account,Contact"}, headers=auth)
    window = {"start": "2025-01-01T00:00:00+00:00", "end": "2025-01-05T00:00:00+00:00"}
    now = datetime.now(UTC).replace(microsecond=0)
    recent = {"start": (now - timedelta(days=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    call("updated", "GET", f"{d}/sobjects/Account/updated/", params=recent, headers=auth)
    call("updated.too_old", "GET", f"{d}/sobjects/Account/updated/", params=window, headers=auth)
    call("deleted", "GET", f"{d}/sobjects/Account/deleted/", params=window, headers=auth)
    call("updated.bad_window", "GET", f"{d}/sobjects/Account/updated", params={"start": "x"}, headers=auth)
    call("deleted.too_long", "GET", f"{d}/sobjects/Account/deleted",
         params={"start": "2024-01-01T00:00:00+00:00", "end": "2025-01-05T00:00:00+00:00"}, headers=auth)
    account = sf.make_id("Account", 1)
    call("record", "GET", f"{d}/sobjects/Account/{account}", headers=auth)
    call("record.fields", "GET", f"{d}/sobjects/Account/{account}", params={"fields": "Name,Industry"},
         headers=auth)
    call("record.missing", "GET", f"{d}/sobjects/Account/001000000000000AAA", headers=auth)
    # writes
    created = call("create", "POST", f"{d}/sobjects/Account", json={"Name": "Created Co", "Industry": "Retail"},
                   headers=auth).json()
    call("create.missing_required", "POST", f"{d}/sobjects/Account", json={"Industry": "Retail"}, headers=auth)
    call("create.bad_field", "POST", f"{d}/sobjects/Account/", json={"Name": "X", "Nope": 1}, headers=auth)
    call("create.bad_json", "POST", f"{d}/sobjects/Account", data=b"{", headers=auth)
    new_id = created.get("id", "x") if isinstance(created, dict) else "x"
    call("patch", "PATCH", f"{d}/sobjects/Account/{new_id}", json={"Name": "Renamed Co"}, headers=auth)
    call("delete", "DELETE", f"{d}/sobjects/Account/{new_id}", headers=auth)
    call("deleted.after", "GET", f"{d}/query", params={"q": "SELECT COUNT() FROM Account"}, headers=auth)
    call("upsert", "PATCH", f"{d}/sobjects/Contact/{sf_objects.EXTERNAL_ID}/ext-1",
         json={"LastName": "Upsert"}, headers=auth)
    call("upsert.get", "GET", f"{d}/sobjects/Contact/{sf_objects.EXTERNAL_ID}/ext-1", headers=auth)
    call("composite", "POST", f"{d}/composite/sobjects", headers=auth, json={
        "allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": "Comp A"},
                                        {"attributes": {"type": "Account"}}]})
    call("composite.patch", "PATCH", f"{d}/composite/sobjects", headers=auth, json={
        "records": [{"attributes": {"type": "Account"}, "id": account, "Name": "Comp B"}]})
    call("composite.delete", "DELETE", f"{d}/composite/sobjects", params={"ids": account}, headers=auth)
    call("composite_upsert", "PATCH", f"{d}/composite/sobjects/Contact/{sf_objects.EXTERNAL_ID}", headers=auth, json={
        "allOrNone": True, "records": [{"attributes": {"type": "Contact"}, sf_objects.EXTERNAL_ID: "ext-2",
                                        "LastName": "C"}]})
    call("composite.bad", "POST", f"{d}/composite/sobjects", json={"x": 1}, headers=auth)
    call("writes.log", "GET", "/_sandbox/salesforce/writes")
    call("limits.control", "GET", "/_sandbox/salesforce/limits")
    call("unauthorized", "GET", f"{d}/limits")
    call("unauthorized.bad", "GET", f"{d}/limits", headers=bearer("nope"))
    call("unknown_path", "GET", "/services/nothing")
    tokens = _oauth_dance(call, "oauth", "/services/oauth2/authorize", "/services/oauth2/token",
                          (sf.DEFAULT_CLIENT_ID, sf.DEFAULT_CLIENT_SECRET))
    call("oauth.basic_refresh", "POST", "/services/oauth2/token",
         data={"grant_type": "refresh_token", "refresh_token": tokens["issued"].get("refresh_token", "")},
         headers=basic(sf.DEFAULT_CLIENT_ID, sf.DEFAULT_CLIENT_SECRET))
    call("oauth.bad_response_type", "GET", "/services/oauth2/authorize", params={"response_type": "token"},
         allow_redirects=False)
    call("oauth.bearer_read", "GET", f"{d}/limits", headers=bearer(tokens["issued"].get("access_token", "")))
    call("oauth.revoke", "POST", "/services/oauth2/revoke", data={"token": tokens["issued"].get("refresh_token")})
    call("oauth.revoke_unknown", "GET", "/services/oauth2/revoke", params={"token": "nope"})
    call("oauth.revoked_read", "GET", f"{d}/limits", headers=bearer(tokens["issued"].get("access_token", "")))
    call("limits.set", "POST", "/_sandbox/salesforce/limits", json={"daily_limit": 1})
    call("limit_exceeded", "GET", f"{d}/limits", headers=auth)


# -- Pipedrive -------------------------------------------------------------------------------------
def pipedrive(call: Call) -> None:
    from canonry.sandbox import pipedrive as pd
    from canonry.sandbox.pipedrive.fields import FIELD_ENDPOINTS

    auth = {"x-api-token": DEFAULT_TOKENS["pipedrive"]}
    for name in pd.V2_OBJECTS:
        body = call(f"v2.{name}", "GET", f"/api/v2/{name}", params={"limit": 4}, headers=auth).json()
        cursor = (body.get("additional_data") or {}).get("next_cursor")
        if cursor:
            call(f"v2.{name}.page2", "GET", f"/api/v2/{name}", params={"limit": 4, "cursor": cursor}, headers=auth)
        first = ((body.get("data") or [{}])[0] or {}).get("id", 2)
        call(f"v2.{name}.get", "GET", f"/api/v2/{name}/{first}", headers=auth)
    call("v2.deals.filtered", "GET", "/api/v2/deals", headers=auth, params={
        "updated_since": "2025-01-01T00:00:10Z", "updated_until": "2025-01-01T00:02:00Z", "sort_by": "update_time",
        "sort_direction": "desc", "status": "open,won,deleted", "limit": 5})
    call("v2.persons.ids", "GET", "/api/v2/persons", params={"ids": "100001,100003,100005"}, headers=auth)
    call("v2.bad_limit", "GET", "/api/v2/persons", params={"limit": 501}, headers=auth)
    call("v2.bad_sort", "GET", "/api/v2/persons", params={"sort_by": "name"}, headers=auth)
    call("v2.bad_cursor", "GET", "/api/v2/persons", params={"cursor": "@@"}, headers=auth)
    call("v2.bad_since", "GET", "/api/v2/persons", params={"updated_since": "yesterday"}, headers=auth)
    call("v2.unknown", "GET", "/api/v2/widgets", headers=auth)
    call("v2.get.missing", "GET", "/api/v2/persons/999999", headers=auth)
    for name in pd.V1_LISTS:
        body = call(f"v1.{name}", "GET", f"/v1/{name}", params={"limit": 3}, headers=auth).json()
        pagination = (body.get("additional_data") or {}).get("pagination") or {}
        if pagination.get("more_items_in_collection"):
            call(f"v1.{name}.page2", "GET", f"/v1/{name}", params={"limit": 3, "start": pagination["next_start"]},
                 headers=auth)
    call("v1.notes", "GET", "/v1/notes", params={"limit": 3, "sort": "update_time DESC"}, headers=auth)
    call("v1.leads", "GET", "/v1/leads", params={"limit": 3, "archived_status": "all"}, headers=auth)
    call("v1.users", "GET", "/v1/users", params={"api_token": DEFAULT_TOKENS["pipedrive"]})
    call("v1.recents", "GET", "/v1/recents", params={"since_timestamp": "2025-01-01 00:00:30", "items": "deal,user",
                                                     "limit": 4}, headers=auth)
    call("v1.recents.bad", "GET", "/v1/recents", params={"since_timestamp": "x"}, headers=auth)
    call("v1.bad_start", "GET", "/v1/persons", params={"start": "x"}, headers=auth)
    for segment in FIELD_ENDPOINTS:
        call(f"v1.{segment}", "GET", f"/v1/{segment}", params={"limit": 6}, headers=auth)
    segment = sorted(FIELD_ENDPOINTS)[0]
    call("v1.field.rename.missing", "PUT", f"/v1/{segment}/999999", json={"name": "x"}, headers=auth)
    # writes
    created = call("v2.create", "POST", "/api/v2/persons", json={"name": "New Person", "emails": [
        {"value": "new@example.com", "primary": True}]}, headers=auth).json()
    call("v2.create.bad", "POST", "/api/v2/persons", json={"nope": 1}, headers=auth)
    call("v2.create.not_json", "POST", "/api/v2/deals", data=b"{", headers=auth)
    new_id = ((created or {}).get("data") or {}).get("id", 1)
    call("v2.update", "PATCH", f"/api/v2/persons/{new_id}", json={"name": "Renamed"}, headers=auth)
    call("v2.delete", "DELETE", f"/api/v2/persons/{new_id}", headers=auth)
    call("v1.create", "POST", "/v1/organizations", json={"name": "New Org"}, headers=auth)
    call("v1.update", "PUT", "/v1/deals/300003", json={"title": "Renamed deal"}, headers=auth)
    call("v1.delete", "DELETE", "/v1/deals/300004", headers=auth)
    call("v2.deals.after_writes", "GET", "/api/v2/deals", params={"status": "deleted"}, headers=auth)
    call("writes.log", "GET", "/_sandbox/pipedrive/writes")
    call("unauthorized", "GET", "/api/v2/persons")
    call("unauthorized.bad", "GET", "/api/v2/persons", headers={"x-api-token": "nope"})
    call("unknown_path", "GET", "/v9/nothing")
    tokens = _oauth_dance(call, "oauth", "/oauth/authorize", "/oauth/token",
                          (pd.DEFAULT_CLIENT_ID, pd.DEFAULT_CLIENT_SECRET), basic_client=True, scope="base")
    call("oauth.bearer_read", "GET", "/api/v2/stages", headers=bearer(tokens["refreshed"].get("access_token", "")))


# -- Workable --------------------------------------------------------------------------------------
def workable(call: Call) -> None:
    token = bearer(DEFAULT_TOKENS["workable"])
    prefix = "/spi/v3"
    for name in ("candidates", "jobs", "members", "events"):
        body = call(name, "GET", f"{prefix}/{name}", params={"limit": 4}, headers=token).json()
        for page in range(2):
            following = (body.get("paging") or {}).get("next")
            if not following:
                break
            path = urlsplit(following)
            body = call(f"{name}.page{page + 2}", "GET", f"{path.path}?{path.query}", headers=token).json()
    call("candidates.updated_after", "GET", f"{prefix}/candidates",
         params={"updated_after": "2025-01-01T00:00:30Z", "limit": 3}, headers=token)
    call("candidates.created_after", "GET", f"{prefix}/candidates",
         params={"created_after": "2024-12-02T00:00:30Z", "limit": 3}, headers=token)
    call("candidates.window", "GET", f"{prefix}/candidates", params={"since_id": "3000004", "max_id": "3000006"},
         headers=token)
    call("candidates.stage", "GET", f"{prefix}/candidates", params={"stage": "interview", "limit": 3}, headers=token)
    call("candidates.job", "GET", f"{prefix}/candidates", params={"shortcode": "ACME0002"}, headers=token)
    call("candidates.limit_capped", "GET", f"{prefix}/candidates", params={"limit": 500}, headers=token)
    call("candidates.bad_limit", "GET", f"{prefix}/candidates", params={"limit": "ten"}, headers=token)
    call("candidates.bad_since_id", "GET", f"{prefix}/candidates", params={"since_id": "zz"}, headers=token)
    call("candidates.bad_updated_after", "GET", f"{prefix}/candidates", params={"updated_after": "yesterday"},
         headers=token)
    call("candidates.naive_updated_after", "GET", f"{prefix}/candidates",
         params={"updated_after": "2025-01-01T00:00:00"}, headers=token)
    call("candidate", "GET", f"{prefix}/candidates/3000002", headers=token)
    call("candidate.missing", "GET", f"{prefix}/candidates/3ffffff", headers=token)
    call("jobs.published", "GET", f"{prefix}/jobs", params={"state": "published"}, headers=token)
    call("job", "GET", f"{prefix}/jobs/ACME0001", headers=token)
    call("job.missing", "GET", f"{prefix}/jobs/NOPE", headers=token)
    call("events.interviews", "GET", f"{prefix}/events", params={"type": "interview", "limit": 3}, headers=token)
    call("stages", "GET", f"{prefix}/stages", headers=token)
    call("departments", "GET", f"{prefix}/departments", headers=token)
    call("unauthorized", "GET", f"{prefix}/jobs")
    call("wrong_token", "GET", f"{prefix}/jobs", headers=bearer("nope"))
    call("unknown_path", "GET", f"{prefix}/widgets", headers=token)
    call("method_not_allowed", "DELETE", f"{prefix}/jobs", headers=token)


SCRIPTS: dict[str, Callable[[Call], None]] = {
    "greenhouse": greenhouse, "lever": lever, "ashby": ashby, "hubspot": hubspot, "salesforce": salesforce,
    "pipedrive": pipedrive, "workable": workable,
}

# Sandbox options that make the provider's own limit bite after two requests (the guard's 429 path).
TIGHT_LIMITS: dict[str, dict] = {
    "greenhouse": {"burst_limit": 2}, "lever": {"rate_per_second": 0.001, "burst": 2},
    "ashby": {"rate_limit": 2}, "hubspot": {"burst_limit": 2, "search_per_second": 1},
    "salesforce": {"daily_limit": 2}, "pipedrive": {"burst_limit": 2}, "workable": {"rate_limit": 2},
}
