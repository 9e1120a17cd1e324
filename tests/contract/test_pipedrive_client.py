"""pipedrive-python-lib (community SDK, its own venv) reads the Pipedrive sandbox end to end and agrees
with the truth endpoint: every v1 list paged to its end, field definitions, custom field values by their
hash keys, and /recents for users (Pipedrive's one-element-list quirk)."""

from __future__ import annotations

from datetime import UTC, datetime

from canonry.sandbox import DEFAULT_TOKENS
from canonry.sandbox.pipedrive.fields import CUSTOM_FIELDS, FIELD_ENDPOINTS, SYSTEM_FIELDS
from tests.contract.peer import run_peer_json
from tests.helpers import mutate, truth

# object -> the attribute compared besides the id and the update time
COMPARED = {"persons": "name", "organizations": "name", "deals": "title", "activities": "subject",
            "notes": "content", "leads": "title"}


def _v1_time(value: str) -> str:
    """A truth timestamp (RFC3339 or v1) as v1 writes it: `YYYY-MM-DD HH:MM:SS`."""
    return value.replace("T", " ").replace("Z", "")[:19]


def _as_v1(kind: str, key: str, value, body: dict) -> bool:
    """Does the v1 body hold the stored (v2) custom value `value` of field `key`?"""
    if value is None:
        return body.get(key) is None
    if kind == "monetary":
        return body[key] == value["value"] and body[f"{key}_currency"] == value["currency"]
    if kind == "set":
        return body[key] == ",".join(map(str, value))
    if kind == "enum":
        return body[key] == str(value)
    return body[key] == value


def test_pipedrive_python_lib_reads_everything_the_truth_holds(sandbox_factory):
    server = sandbox_factory("pipedrive", scale=300, custom_fields=True)   # 600 persons: two pages of 500
    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    changed_users = mutate(server, "users", update=2)["update"]
    mutate(server, "persons", update=4, delete=3)
    mutate(server, "deals", create=2, delete=1)
    read = run_peer_json("pipedrive-python-lib", server.base_url, DEFAULT_TOKENS["pipedrive"], since)

    for name, attribute in COMPARED.items():
        expected = {r["id"]: r for r in truth(server, name) if not r["deleted"]}
        got = {str(r["id"]): r for r in read[name]}
        assert set(got) == set(expected), name
        for remote_id, record in got.items():
            want = expected[remote_id]["record"]
            assert record[attribute] == want[attribute], (name, remote_id)
            assert _v1_time(record["update_time"]) == _v1_time(want["update_time"]), (name, remote_id)
    assert {str(u["id"]) for u in read["users"]} == {r["id"] for r in truth(server, "users") if not r["deleted"]}

    # Field definitions: every endpoint, system fields by name, custom ones by 40-character hash key.
    for segment, entity in FIELD_ENDPOINTS.items():
        fields = read[segment]
        assert len(fields) == len(SYSTEM_FIELDS[entity]) + len(CUSTOM_FIELDS.get(entity, ())), segment
        assert [f["name"] for f in fields if f["edit_flag"]] == [n for n, _, _ in CUSTOM_FIELDS.get(entity, ())]

    # Custom field values as v1 renders them, against the stored values the truth endpoint shows.
    for name, segment in (("persons", "personFields"), ("organizations", "organizationFields"),
                          ("deals", "dealFields")):
        kinds = {f["key"]: f["field_type"] for f in read[segment] if f["edit_flag"]}
        expected = {r["id"]: r["record"]["custom_fields"] for r in truth(server, name) if not r["deleted"]}
        filled = 0
        for record in read[name]:
            stored = expected[str(record["id"])]
            assert set(stored) == set(kinds)
            assert all(_as_v1(kinds[key], key, value, record) for key, value in stored.items()), record["id"]
            filled += sum(value is not None for value in stored.values())
        assert filled > len(read[name]) * len(kinds) // 2

    # /recents?items=user: the client reads `data[0]`, which only works on a one-element list.
    assert {str(u["id"]) for u in read["recent_users"]} == set(changed_users)
