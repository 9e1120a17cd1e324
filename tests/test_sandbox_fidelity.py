"""Sandbox behaviours that independent clients depend on: each provider's own error body for a path it does
not serve, Pipedrive's /recents quirk for users and its field-definition endpoints, Ashby ignoring list
body keys an endpoint does not declare."""

from __future__ import annotations

import re

import pytest
import requests

from canonry.sandbox import DEFAULT_TOKENS
from canonry.sandbox.pipedrive.fields import CUSTOM_FIELDS, FIELD_ENDPOINTS, SYSTEM_FIELDS
from tests.helpers import mutate

PIPEDRIVE_AUTH = {"x-api-token": DEFAULT_TOKENS["pipedrive"]}

# provider -> (method, unknown path, auth headers, what the JSON error body must hold)
UNKNOWN_PATHS = {
    "lever": ("GET", "/v1/no_such_thing", {}, lambda body: body["code"] == "ResourceNotFound" and body["message"]),
    "greenhouse": ("GET", "/v3/no/such/path", {}, lambda body: set(body) == {"message"}),
    "pipedrive": ("GET", "/v9/nothing", {}, lambda body: body["success"] is False and body["errorCode"] == 404),
    "salesforce": ("GET", "/services/nothing", {},
                   lambda body: body == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
    "hubspot": ("GET", "/crm/v9/nothing/at/all", {}, lambda body: body["status"] == "error"),
    "ashby": ("GET", "/candidate.list", {}, lambda body: body["success"] is False),
}


@pytest.mark.parametrize("provider", sorted(UNKNOWN_PATHS))
def test_unknown_path_answers_in_the_providers_json_error_format(sandbox_factory, provider):
    method, path, headers, check = UNKNOWN_PATHS[provider]
    server = sandbox_factory(provider, scale=20)
    response = requests.request(method, server.base_url + path, headers=headers, timeout=10)
    assert response.status_code in (404, 405)
    assert response.headers["content-type"].startswith("application/json")
    assert check(response.json()), response.text


def test_pipedrive_recents_gives_users_data_as_a_one_element_list(sandbox_factory):
    server = sandbox_factory("pipedrive", scale=100)
    changed = mutate(server, "users", update=2)["update"] + mutate(server, "persons", update=1)["update"]
    answer = requests.get(f"{server.base_url}/v1/recents", headers=PIPEDRIVE_AUTH, timeout=10,
                          params={"since_timestamp": "2026-01-01 00:00:00", "items": "user,person"}).json()
    rows = answer["data"]
    users = [r for r in rows if r["item"] == "user"]
    persons = [r for r in rows if r["item"] == "person"]
    assert {str(r["id"]) for r in rows} == set(changed)
    assert all(isinstance(r["data"], list) and len(r["data"]) == 1 and r["data"][0]["id"] == r["id"] for r in users)
    assert all(isinstance(r["data"], dict) and r["data"]["id"] == r["id"] for r in persons)
    assert answer["additional_data"]["last_timestamp_on_page"]


@pytest.mark.parametrize("segment", sorted(FIELD_ENDPOINTS))
def test_pipedrive_field_endpoints_page_and_key_custom_fields_by_hash(sandbox_factory, segment):
    server = sandbox_factory("pipedrive", scale=20)
    entity = FIELD_ENDPOINTS[segment]
    url = f"{server.base_url}/v1/{segment}"
    fields, start = [], 0
    while True:   # pages of 5, as a client following `next_start` would read them
        answer = requests.get(url, headers=PIPEDRIVE_AUTH, params={"start": start, "limit": 5}, timeout=10).json()
        assert answer["success"] is True
        fields += answer["data"] or []
        pagination = answer["additional_data"]["pagination"]
        if not pagination["more_items_in_collection"]:
            break
        start = pagination["next_start"]
    assert len(fields) == len(SYSTEM_FIELDS[entity]) + len(CUSTOM_FIELDS.get(entity, ()))
    custom = [f for f in fields if f["edit_flag"]]
    assert [f["name"] for f in custom] == [name for name, _, _ in CUSTOM_FIELDS.get(entity, ())]
    assert all(re.fullmatch(r"[0-9a-f]{40}", f["key"]) for f in custom)
    assert all(not re.fullmatch(r"[0-9a-f]{40}", f["key"]) for f in fields if not f["edit_flag"])
    for f in fields:
        if f["field_type"] in ("enum", "set") and f["edit_flag"]:
            assert f["options"] and all({"id", "label"} <= set(o) for o in f["options"])
    whole = requests.get(url, headers=PIPEDRIVE_AUTH, params={"limit": 500}, timeout=10).json()["data"]
    assert whole == fields
    assert requests.get(url, timeout=10).status_code == 401


def test_pipedrive_custom_fields_values_v1_and_v2_and_rename_keeps_the_key(sandbox_factory):
    server = sandbox_factory("pipedrive", scale=30, custom_fields=True)
    fields = requests.get(f"{server.base_url}/v1/personFields", headers=PIPEDRIVE_AUTH, timeout=10).json()["data"]
    custom = {f["key"]: f for f in fields if f["edit_flag"]}
    kinds = {f["field_type"] for f in custom.values()}
    assert kinds == {"varchar", "double", "date", "enum", "set", "monetary", "user"}
    v2 = requests.get(f"{server.base_url}/api/v2/persons", headers=PIPEDRIVE_AUTH, params={"limit": 50},
                      timeout=10).json()["data"]
    v1 = {p["id"]: p for p in requests.get(f"{server.base_url}/v1/persons", headers=PIPEDRIVE_AUTH,
                                           params={"limit": 50}, timeout=10).json()["data"]}
    for person in v2:
        assert set(person["custom_fields"]) == set(custom)
        for key, value in person["custom_fields"].items():
            if value is None:
                continue
            kind = custom[key]["field_type"]
            option_ids = {o["id"] for o in custom[key].get("options", [])}
            if kind == "monetary":
                assert set(value) == {"value", "currency"}
                assert v1[person["id"]][key] == value["value"]
                assert v1[person["id"]][f"{key}_currency"] == value["currency"]
            elif kind == "set":
                assert set(value) <= option_ids and value
                assert v1[person["id"]][key] == ",".join(map(str, value))
            elif kind == "enum":
                assert value in option_ids and v1[person["id"]][key] == str(value)
            else:
                assert v1[person["id"]][key] == value
        assert "custom_fields" not in v1[person["id"]]
    # Rename a custom field: same id and key, new name; system fields refuse.
    segment = next(f for f in custom.values() if f["field_type"] == "enum")
    renamed = requests.put(f"{server.base_url}/v1/personFields/{segment['id']}", headers=PIPEDRIVE_AUTH,
                           json={"name": "Customer segment"}, timeout=10).json()["data"]
    assert (renamed["key"], renamed["name"]) == (segment["key"], "Customer segment")
    system = next(f for f in fields if not f["edit_flag"])
    refused = requests.put(f"{server.base_url}/v1/personFields/{system['id']}", headers=PIPEDRIVE_AUTH,
                           json={"name": "x"}, timeout=10)
    assert refused.status_code == 400 and refused.json()["success"] is False


def test_pipedrive_without_the_option_generates_no_custom_values(sandbox_factory):
    server = sandbox_factory("pipedrive", scale=20)
    v2 = requests.get(f"{server.base_url}/api/v2/deals", headers=PIPEDRIVE_AUTH, timeout=10).json()["data"]
    assert v2 and all(d["custom_fields"] == {} for d in v2)


def test_ashby_list_bodies_ignore_keys_the_endpoint_does_not_declare(sandbox_factory):
    server = sandbox_factory("ashby", scale=30)
    auth = (DEFAULT_TOKENS["ashby"], "")
    plain = requests.post(f"{server.base_url}/candidate.list", json={"limit": 100}, auth=auth, timeout=10).json()
    extra = requests.post(f"{server.base_url}/candidate.list", auth=auth, timeout=10,
                          json={"limit": 100, "per_page": 100, "createdAfter": 1_600_000_000_000}).json()
    assert extra["success"] is True
    assert [r["id"] for r in extra["results"]] == [r["id"] for r in plain["results"]]
    schedules = requests.post(f"{server.base_url}/interviewSchedule.list", auth=auth, timeout=10,
                              json={"createdAfter": 1_600_000_000_000}).json()
    assert schedules["success"] is True
    # A declared key with a bad value is still refused.
    bad = requests.post(f"{server.base_url}/candidate.list", json={"limit": "many"}, auth=auth, timeout=10).json()
    assert bad["success"] is False and bad["errorInfo"]["code"] == "invalid_input"


def test_ashby_application_list_applies_its_own_filters(sandbox_factory):
    server = sandbox_factory("ashby", scale=60)
    auth = (DEFAULT_TOKENS["ashby"], "")

    def listed(**body) -> list[dict]:
        answer = requests.post(f"{server.base_url}/application.list", json={"limit": 100, **body}, auth=auth,
                               timeout=10).json()
        assert answer["success"] is True, answer
        return answer["results"]

    everything = listed()
    assert len(everything) > 60
    hired = listed(status="Hired")
    assert hired and {a["status"] for a in hired} == {"Hired"}
    assert {a["id"] for a in hired} == {a["id"] for a in everything if a["status"] == "Hired"}
    job = everything[0]["job"]["id"]
    assert {a["id"] for a in listed(jobId=job)} == {a["id"] for a in everything if a["job"]["id"] == job}
    assert listed(createdAfter=4_102_444_800_000) == []          # 2100-01-01: nothing created after it
    assert len(listed(createdAfter=0)) == len(everything)
    bad = requests.post(f"{server.base_url}/application.list", json={"createdAfter": "yesterday"}, auth=auth,
                        timeout=10).json()
    assert bad["success"] is False and bad["errorInfo"]["code"] == "invalid_input"
