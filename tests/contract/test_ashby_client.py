"""The `ashby` SDK (community, its own venv) lists every object of the Ashby sandbox, following cursors to
the end, and agrees with the truth endpoint: the same ids (hard-deleted candidates, deactivated users and
archived metadata left out, as Ashby's lists do without include flags) and the same values."""

from __future__ import annotations

from canonry.sandbox import DEFAULT_TOKENS
from tests.contract.peer import run_peer_json
from tests.helpers import mutate, truth


def _alive(row: dict) -> bool:
    return not row["deleted"]


def _everything(row: dict) -> bool:
    return True


# object -> (which truth rows a list without include flags returns, [(SDK attribute, truth path)])
EXPECTED = {
    "candidates": (_alive, [("name", "name"), ("updated_at", "updatedAt")]),
    "applications": (_everything, [("status", "status"), ("candidate_id", "candidate.id"),
                                   ("updated_at", "updatedAt")]),
    "jobs": (_everything, [("title", "title"), ("status", "status"), ("department_id", "departmentId"),
                           ("location_id", "locationId")]),
    "offers": (_everything, [("application_id", "applicationId")]),
    "interview_schedules": (_everything, [("status", "status"), ("application_id", "applicationId")]),
    "users": (lambda row: row["record"]["isEnabled"], [("email", "email"), ("is_enabled", "isEnabled")]),
    "departments": (_alive, [("name", "name"), ("parent_id", "parentId")]),
    "locations": (_alive, [("name", "name"), ("is_remote", "isRemote")]),
    "archive_reasons": (_alive, [("name", "text"), ("reason_type", "reasonType")]),
    "sources": (_alive, []),
}


def _path(record: dict, path: str):
    for part in path.split("."):
        record = record[part]
    return record


def test_ashby_sdk_lists_everything_the_truth_holds(sandbox_factory):
    server = sandbox_factory("ashby", scale=250)   # 250 candidates, 300+ applications: several cursor pages
    mutate(server, "candidates", update=5, delete=3)
    mutate(server, "applications", delete=4)       # archived: still listed
    mutate(server, "users", delete=1)              # deactivated: not listed without includeDeactivated
    mutate(server, "departments", delete=1)        # archived: not listed without includeArchived
    read = run_peer_json("ashby", server.base_url, DEFAULT_TOKENS["ashby"])
    for name, (listed, compared) in EXPECTED.items():
        expected = {row["id"]: row["record"] for row in truth(server, name) if listed(row)}
        got = {model["id"]: model for model in read[name]}
        assert len(got) == len(read[name]), f"{name}: duplicates across pages"
        assert set(got) == set(expected), name
        for remote_id, model in got.items():
            for attribute, path in compared:
                assert model[attribute] == _path(expected[remote_id], path), (name, remote_id, attribute)
