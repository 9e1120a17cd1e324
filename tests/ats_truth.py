"""What the ATS sandboxes' truth says about hires: each provider's hire time (the rule `ats_applications.hired_at`
documents) and, for the analyst guide's time-to-hire query, each hire's job department, applied and hired times.

Computed from the sandboxes' truth endpoints only (tests.helpers.truth), never from the warehouse."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime

from canonry.warehouse import PROJECT_ROOT
from tests.helpers import query, truth


def _iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


def greenhouse_hired_at(application: dict, offers: list[dict]) -> datetime | None:
    """A hired application's accepted offer's resolution, else its last activity (Harvest has no hire time)."""
    if application["status"] != "hired":
        return None
    accepted = [_iso(o["resolved_at"]) for o in offers if o["application_id"] == application["id"]
                and o["status"] == "accepted" and o["resolved_at"]]
    return max(accepted) if accepted else _iso(application["last_activity_at"])


def ashby_hired_at(application: dict, offers: list[dict]) -> datetime | None:
    """A Hired application's accepted offer's decision, else its last change."""
    if application["status"] != "Hired":
        return None
    accepted = [_iso(o["decidedAt"]) for o in offers if o["applicationId"] == application["id"]
                and o["acceptanceStatus"] == "Accepted" and o["decidedAt"]]
    return max(accepted) if accepted else _iso(application["updatedAt"])


def lever_hired_at(opportunity: dict, reasons: dict[str, dict]) -> datetime | None:
    """An opportunity archived with a reason of status `hired`: its archive time."""
    archived = opportunity["archived"]
    if archived is None or reasons[archived["reason"]]["status"] != "hired":
        return None
    return _ms(archived["archivedAt"])


def _alive(server, name: str) -> list[dict]:
    return [r["record"] for r in truth(server, name) if not r["deleted"]]


def _most_specific(names_by_id: dict, parent_of: dict, ids: list) -> list[str]:
    """The job's departments without those whose child is also listed (Lever lists a team and its department)."""
    return [names_by_id[d] for d in ids if d in names_by_id and not any(parent_of.get(c) == d for c in ids)]


def greenhouse_hires(server) -> list[tuple[str, datetime, datetime]]:
    offers = _alive(server, "offers")
    departments = _alive(server, "departments")
    names = {d["id"]: d["name"] for d in departments}
    parents = {d["id"]: d["parent_id"] for d in departments}
    jobs = {j["id"]: j for j in _alive(server, "jobs")}
    out = []
    for application in _alive(server, "applications"):
        hired = greenhouse_hired_at(application, offers)
        job = jobs.get(application["job_id"])
        if hired is not None and job is not None:
            out += [(name, _iso(application["applied_at"]), hired)
                    for name in _most_specific(names, parents, job["department_ids"])]
    return out


def ashby_hires(server) -> list[tuple[str, datetime, datetime]]:
    offers = _alive(server, "offers")
    departments = _alive(server, "departments")
    names = {d["id"]: d["name"] for d in departments}
    parents = {d["id"]: d["parentId"] for d in departments}
    jobs = {j["id"]: j for j in _alive(server, "jobs")}
    out = []
    for application in _alive(server, "applications"):
        hired = ashby_hired_at(application, offers)
        job = jobs.get(application["job"]["id"])
        if hired is not None and job is not None:
            out += [(name, _iso(application["createdAt"]), hired)
                    for name in _most_specific(names, parents, [job["departmentId"]])]
    return out


def lever_hires(server) -> list[tuple[str, datetime, datetime]]:
    """Lever has no departments: a posting's categories.department is one, its team a child of it."""
    reasons = {r["id"]: r for r in _alive(server, "archive_reasons")}
    postings = {p["id"]: p["categories"] for p in _alive(server, "postings")}
    out = []
    for opportunity in _alive(server, "opportunities"):
        hired = lever_hired_at(opportunity, reasons)
        application = (opportunity["applications"] or [None])[0]
        categories = postings.get(application["posting"]) if application else None
        if hired is None or categories is None:
            continue
        department = categories.get("team") or categories.get("department")
        if department:
            out.append((department, _ms(application["createdAt"] or opportunity["createdAt"]), hired))
    return out


def workable_hired_at(candidate: dict) -> datetime | None:
    """A candidate in a stage of kind `hired`: its `hired_at` day (Workable gives a date), midnight UTC."""
    if candidate["stage_kind"] != "hired" or not candidate["hired_at"]:
        return None
    return datetime.fromisoformat(candidate["hired_at"]).replace(tzinfo=UTC)


def workable_hires(server) -> list[tuple[str, datetime, datetime]]:
    """A job's department is the last entry of its `department_hierarchy`; candidates name jobs by shortcode."""
    departments = _alive(server, "departments")
    names = {d["id"]: d["name"] for d in departments}
    parents = {d["id"]: d["parent_id"] for d in departments}
    jobs = {j["shortcode"]: j for j in _alive(server, "jobs")}
    out = []
    for candidate in _alive(server, "candidates"):
        hired = workable_hired_at(candidate)
        job = jobs.get(candidate["job"]["shortcode"])
        if hired is not None and job is not None:
            out += [(name, _iso(candidate["created_at"]), hired)
                    for name in _most_specific(names, parents, [job["department_hierarchy"][-1]["id"]])]
    return out


HIRES = {"greenhouse": greenhouse_hires, "lever": lever_hires, "ashby": ashby_hires, "workable": workable_hires}


def time_to_hire_query() -> str:
    """The time-to-hire query of docs/analyst-guide.md, exactly as printed there."""
    text = (PROJECT_ROOT / "docs" / "analyst-guide.md").read_text()
    block = re.search(r"<!-- time-to-hire:start -->\s*```sql\n(.*?)```\s*<!-- time-to-hire:end -->", text, re.S)
    assert block, "docs/analyst-guide.md lost its time-to-hire query"
    return block.group(1)


def assert_time_to_hire_matches_truth(servers: dict) -> None:
    """The guide's query on the synced DuckDB warehouse == the same figures computed from the sandboxes' truth:
    per provider and department, the number of hires and their median days to hire."""
    expected: dict[tuple[str, str], list[float]] = {}
    for provider, hires in HIRES.items():
        for department, applied, hired in hires(servers[provider]):
            expected.setdefault((provider, department), []).append((hired - applied).total_seconds() / 86400)
    rows = query(time_to_hire_query())
    assert {r["provider"] for r in rows} == set(HIRES), "the query must answer for every ATS"
    assert {(r["provider"], r["department"]): r["hires"] for r in rows} == {k: len(v) for k, v in expected.items()}
    for row in rows:
        median = statistics.median(expected[row["provider"], row["department"]])
        assert abs(float(row["median_days_to_hire"]) - median) <= 0.05 + 1e-9, (row, median)
