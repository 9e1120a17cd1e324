"""A 429 storm longer than the retries ends a run like a spent quota: what was read is committed (status
`partial`, error class `rate_limited`), the run stops cleanly, and the next run resumes from there and
ends equal to the sandbox's truth. Every provider (HubSpot keeps the pages read before the storm and
their position; the others read the stopped pass again)."""

from __future__ import annotations

import pytest

from canonry.http_budget import RetryPolicy
from canonry.pipeline import sync
from canonry.providers import slugs
from tests.helpers import query, set_faults
from tests.reliability.providers import assert_equals_truth, build_canonical, case

# A storm after a few answered requests, longer than the retries allowed below (3 throttled attempts per
# request). HubSpot's full pass reads its objects concurrently (up to 5 readers, each retrying its own request):
# a storm longer than the retries is then more than 5 x 3 answers.
STORM = {provider: {"storm_after": 5, "storm_429": 16 if provider == "hubspot" else 4} for provider in slugs()}


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

    set_faults(server)  # the storm is over (answers of it a stopped reader left unread are not replayed)
    resumed = sync(connection, on_start=_few_retries)
    assert resumed.status == "success", resumed.error
    runs = query("select status, error_class from ops.sync_runs where connection_id = ? order by started_at",
                 [connection.id])
    assert [(r["status"], r["error_class"]) for r in runs] == [("partial", "rate_limited"), ("success", None)]
    build_canonical(provider)
    assert_equals_truth(server, provider, connection.id)
