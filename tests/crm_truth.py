"""CRM assertions the provider truth tests share (tests/sources/test_{hubspot,salesforce,pipedrive}.py): what
must hold between canonical CRM tables whatever the provider, checked on the synced warehouse."""

from __future__ import annotations

from tests.helpers import query


def assert_stage_flags_match_status(provider: str, *, stages_carry_outcome: bool) -> None:
    """Every opportunity of `provider` has the status its stage's flags say (won stage -> WON, closed stage not
    won -> LOST, open stage -> OPEN); `crm_opportunity_status_matches_stage_flags` checks the same in dbt.

    `stages_carry_outcome`: the provider's stages say won/lost (HubSpot, Salesforce): every stage has both flags
    and won deals sit on won stages. Otherwise (Pipedrive: won/lost is the deal's status) both flags are null on
    every stage, and the provider's WON deals sit on such stages (what `false` flags used to contradict)."""
    rows = query("""
        select o.status, s.is_closed, s.is_won, count(*) as n
        from canonical.crm_opportunities as o
        join canonical.crm_stages as s on s.stage_id = o.stage_id
        where o.provider = ?
        group by 1, 2, 3""", [provider])
    assert rows, f"{provider}: no opportunity on a known stage (nothing checked)"
    contradictions = [r for r in rows if (r["is_won"] is True and r["status"] != "WON")
                      or (r["is_closed"] is True and r["is_won"] is False and r["status"] != "LOST")
                      or (r["is_closed"] is False and r["status"] != "OPEN")]
    assert contradictions == [], f"{provider}: statuses contradicting their stage's flags: {contradictions}"
    flags = query("select count(*) as stages, count(is_closed) as closed_known, count(is_won) as won_known "
                  "from canonical.crm_stages where provider = ?", [provider])[0]
    won = sum(r["n"] for r in rows if r["status"] == "WON")
    assert won > 0, f"{provider}: no WON opportunity on a known stage (the check would prove little)"
    if stages_carry_outcome:
        assert flags["closed_known"] == flags["won_known"] == flags["stages"] > 0, (provider, flags)
        assert all(r["is_won"] is True for r in rows if r["status"] == "WON"), (provider, rows)
    else:
        assert flags["stages"] > 0 and flags["closed_known"] == flags["won_known"] == 0, (provider, flags)
