"""Singer.io's tap-lever (its own venv) syncs the Lever sandbox and agrees with the truth endpoint.

The tap reads opportunities in one-day `updated_at_start`/`updated_at_end` windows from its start date to
now (about 700 calls), so the sandbox runs without its rate limit: the tap has no throttle of its own
beyond backing off on 429s, and what is tested here is the API's shape, not pacing."""

from __future__ import annotations

from datetime import UTC, datetime

from canonry.sandbox import DEFAULT_TOKENS
from tests.contract.peer import run_peer, singer_records
from tests.helpers import mutate, truth

START_DATE = "2024-12-31T12:00:00Z"   # before the sandbox's first record; not on a day boundary of its data


def _ms(value: str) -> int:
    """The tap's datetime string (UNIX-ms integers parsed to ISO) back to epoch milliseconds."""
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000)


def _get(record: dict | None, path: str):
    for part in path.split("."):
        record = record.get(part) if isinstance(record, dict) else None
    return record


# stream -> (which truth rows the default list returns, attributes compared)
EXPECTED = {
    "opportunities": (lambda r: not r["deleted"] and r["record"]["confidentiality"] == "non-confidential",
                      ("name", "headline", "stage", "owner", "archived.reason")),
    "postings": (lambda r: not r["deleted"], ("text", "state", "owner", "hiringManager")),
    "users": (lambda r: not r["deleted"] and r["record"]["deactivatedAt"] is None, ("name", "email", "accessRole")),
    "stages": (lambda r: not r["deleted"], ("text",)),
    "archive_reasons": (lambda r: not r["deleted"], ("text",)),
}


def test_tap_lever_syncs_what_the_truth_holds(sandbox_factory):
    server = sandbox_factory("lever", scale=120, rate_limits=False)
    updated = mutate(server, "opportunities", update=5, delete=2)["update"]
    stdout = run_peer("tap-lever", server.base_url, DEFAULT_TOKENS["lever"], START_DATE, ",".join(EXPECTED),
                      timeout=180)
    records = singer_records(stdout)
    for stream, (listed, attributes) in EXPECTED.items():
        expected = {r["id"]: r["record"] for r in truth(server, stream) if listed(r)}
        got = {r["id"]: r for r in records.get(stream, [])}
        assert len(got) == len(records.get(stream, [])), f"{stream}: a record in two windows"
        assert set(got) == set(expected), stream
        for remote_id, record in got.items():
            for attribute in attributes:
                assert _get(record, attribute) == _get(expected[remote_id], attribute), (stream, remote_id, attribute)
            if "updatedAt" in expected[remote_id] and record.get("updatedAt"):
                assert _ms(record["updatedAt"]) == expected[remote_id]["updatedAt"], (stream, remote_id)
    # The changes made just now arrive in the last window (confidential ones are not listed by default).
    listed = {r["id"] for r in truth(server, "opportunities") if EXPECTED["opportunities"][0](r)}
    assert set(updated) & listed and set(updated) & listed <= {r["id"] for r in records["opportunities"]}
