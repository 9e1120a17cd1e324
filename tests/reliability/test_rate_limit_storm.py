"""A 429 storm longer than the retries ends a run like a spent quota: what was read is committed (status
`partial`, error class `rate_limited`), the run stops cleanly, and the next run resumes from there and
ends equal to the sandbox's truth. Every provider (HubSpot and Lever keep the pages read before the storm and
their position; the others read the stopped pass again).

Lever's opportunities pass commits a page only with its interviews and offers (one call per opportunity and
list, inside the page's checkpoint): a storm in page one's children would rightly commit nothing. Its storm
starts once page one and its children are answered, so the first run must keep exactly that page with its
children, and the second run (from page two's token) must neither lose nor duplicate a record."""

from __future__ import annotations

import pytest

from canonry.http_budget import RetryPolicy
from canonry.pipeline import sync
from canonry.providers import slugs
from sources.lever.settings import CHILDREN as LEVER_CHILDREN
from sources.lever.settings import PAGE_SIZE as LEVER_PAGE_SIZE
from tests.helpers import query, set_faults
from tests.reliability.providers import assert_equals_truth, build_canonical, case

# A storm after a few answered requests, longer than the retries allowed below (3 throttled attempts per
# request). HubSpot's full pass reads its objects concurrently (up to 5 readers, each retrying its own request):
# a storm longer than the retries is then more than 5 x 3 answers.
STORM = {provider: {"storm_after": 5, "storm_429": 16 if provider == "hubspot" else 4} for provider in slugs()}
# Lever: after opportunities page one (one list call) and its children (one call per opportunity and list).
LEVER_FIRST_PAGE_CALLS = 1 + len(LEVER_CHILDREN) * LEVER_PAGE_SIZE
STORM["lever"] = {"storm_after": LEVER_FIRST_PAGE_CALLS, "storm_429": 4}
# What the first run must have committed, where the storm's start pins it down exactly (raw table -> rows).
KEPT_BEFORE_STORM = {"lever": {"opportunities": LEVER_PAGE_SIZE, **dict.fromkeys(LEVER_CHILDREN, LEVER_PAGE_SIZE)}}
# Raw tables the resumed run must not have written twice (the committed pages are not read again).
RAW_WITHOUT_DUPLICATES = {"lever": ("opportunities", *LEVER_CHILDREN)}


def _few_retries(runtime) -> None:
    runtime.retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.2, max_throttled_attempts=3)


@pytest.mark.parametrize("provider", sorted(STORM))
def test_a_429_storm_past_the_retries_ends_partial_and_the_next_run_resumes_to_truth(
        provider, data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    monkeypatch.setenv("CANONRY_CHECKPOINT_PAGES", "1")
    row = case(provider)
    server = sandbox_factory(provider, scale=row.scale)
    connection = row.connect(server, connect_sandbox, monkeypatch, row.connection_id or f"{provider}-storm")
    set_faults(server, **STORM[provider])

    stopped = sync(connection, on_start=_few_retries)
    assert stopped.status == "partial", stopped.error
    assert stopped.error.error_class == "rate_limited" and "gave up after" in stopped.error.detail
    assert stopped.throttled >= 3 and stopped.checkpoints >= 1
    assert sum(stopped.records.values()) > 0  # what was read before the storm is committed
    if provider in KEPT_BEFORE_STORM:
        # (a resource the storm stopped before its first page reports 0 rows)
        assert {table: n for table, n in stopped.records.items() if n} == KEPT_BEFORE_STORM[provider]

    set_faults(server)  # the storm is over (answers of it a stopped reader left unread are not replayed)
    resumed = sync(connection, on_start=_few_retries)
    assert resumed.status == "success", resumed.error
    runs = query("select status, error_class from ops.sync_runs where connection_id = ? order by started_at",
                 [connection.id])
    assert [(r["status"], r["error_class"]) for r in runs] == [("partial", "rate_limited"), ("success", None)]
    for table in RAW_WITHOUT_DUPLICATES.get(provider, ()):
        raw = query(f"select count(*) as n, count(distinct remote_id) as d from raw_{provider}.{table}")[0]
        assert raw["n"] == raw["d"], (table, raw)
    build_canonical(provider)
    assert_equals_truth(server, provider, connection.id)
