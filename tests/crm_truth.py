"""CRM assertions the provider truth tests share (tests/sources/test_{hubspot,salesforce,pipedrive}.py): what
must hold between canonical CRM tables whatever the provider, checked on the synced warehouse."""

from __future__ import annotations

import csv
import re
from decimal import ROUND_HALF_UP, Decimal

from canonry.warehouse import PROJECT_ROOT
from tests.helpers import query

RATES_SEED = PROJECT_ROOT / "dbt" / "seeds" / "reporting_currency_rates.csv"
CENT = Decimal("0.01")


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


def reporting_rates(reporting_currency: str = "USD") -> dict[str, Decimal]:
    """currency -> rate to `reporting_currency`, read from the seed file the user may replace (the truth side
    of the conversion: the rates are an input, not something the warehouse computes)."""
    with RATES_SEED.open(newline="") as handle:
        rates = {r["currency"]: Decimal(r["rate"]) for r in csv.DictReader(handle)
                 if r["reporting_currency"] == reporting_currency}
    return {**rates, reporting_currency: Decimal(1)}


def expected_amount_reporting(amount: Decimal | None, currency: str | None,
                              rates: dict[str, Decimal]) -> Decimal | None:
    """What crm_opportunities.amount_reporting must hold: amount * rate rounded to cents (half away from zero,
    as DuckDB and PostgreSQL round decimals), null without an amount or a rate."""
    if amount is None or currency not in rates:
        return None
    return (amount * rates[currency]).quantize(CENT, rounding=ROUND_HALF_UP)


def pipeline_value_query() -> str:
    """The pipeline-value query of docs/analyst-guide.md, exactly as printed there."""
    text = (PROJECT_ROOT / "docs" / "analyst-guide.md").read_text()
    block = re.search(r"<!-- pipeline-value:start -->\s*```sql\n(.*?)```\s*<!-- pipeline-value:end -->", text, re.S)
    assert block, "docs/analyst-guide.md lost its pipeline-value query"
    return block.group(1)


def assert_pipeline_value_matches(provider: str, expected: dict[str, tuple[int, Decimal]]) -> None:
    """The guide's query, as printed, gives for `provider` per status the number of live deals and the sum of
    their amounts in the reporting currency that `expected` ({status: (deals, value)}) computes from truth."""
    rows = [r for r in query(pipeline_value_query()) if r["provider"] == provider]
    assert {r["status"]: (r["deals"], r["value"]) for r in rows} == expected
    assert all(r["reporting_currency"] == "USD" and r["deals_without_rate"] == 0 for r in rows), rows
