"""Per-provider truth comparison for the reliability suites: one row per provider.

A provider joins the fault, kill and replay suites by adding its row: which sandbox objects feed which
canonical tables, and how its sandbox is scaled for a small run (enough records for several pages, and
several checkpoints when a checkpoint is one page).
"""

from __future__ import annotations

from dataclasses import dataclass

from canonry.transform import build
from tests.helpers import canonical, query, truth


@dataclass(frozen=True)
class ProviderCase:
    # (sandbox object, canonical table) pairs whose ids and deletion flags must equal the sandbox's truth
    tables: tuple[tuple[str, str], ...]
    # objects mutated between the full and the incremental sync
    mutable: tuple[str, ...]
    scale: int = 230
    # sandbox options for these suites (e.g. a higher rate limit so the suite stays fast)
    sandbox_options: tuple[tuple[str, object], ...] = ()


TRUTH: dict[str, ProviderCase] = {
    "hubspot": ProviderCase(
        tables=(("contacts", "crm_contacts"), ("companies", "crm_accounts"), ("deals", "crm_opportunities"),
                ("owners", "crm_users")),
        mutable=("contacts", "companies", "deals"),
    ),
}


def build_canonical() -> None:
    result = build()
    assert result.success, [f"{n.name}: {n.status} {n.message}" for n in result.failures()] or result.error


def assert_equals_truth(server, provider: str) -> None:
    """Canonical rows of the provider = the sandbox's records (ids, deletion flags), no duplicate ids."""
    for object_name, table in TRUTH[provider].tables:
        expected = {r["id"]: r for r in truth(server, object_name)}
        rows = canonical(table, provider)
        missing, extra = set(expected) - set(rows), set(rows) - set(expected)
        assert not missing and not extra, (f"{provider} {table}: {len(missing)} missing "
                                           f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected")
        wrong = [i for i, r in expected.items() if rows[i]["is_deleted"] != r["deleted"]]
        assert not wrong, f"{provider} {table}: is_deleted differs for {wrong[:5]}"
        counts = query(f"select count(*) as n, count(distinct remote_id) as d from canonical.{table} "
                       "where provider = ?", [provider])[0]
        assert counts["n"] == counts["d"] == len(expected), f"{provider} {table}: duplicate ids {counts}"
