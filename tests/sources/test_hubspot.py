"""HubSpot end to end: sandbox over HTTP -> dlt -> raw_hubspot -> dbt -> canonical crm_* tables."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from canonry.canonical import id_column
from canonry.errors import ErrorClass
from canonry.pipeline import sync
from canonry.transform import build
from sources.hubspot.settings import CRM_OBJECTS
from tests.crm_truth import assert_stage_flags_match_status, expected_amount_reporting, reporting_rates
from tests.helpers import canonical, clear_request_log, lineage, mutate, query, request_log, set_faults, truth
from tests.pg import WAREHOUSES
from tests.reliability.providers import CRUD, ProviderCase, generic_truth

SCALE = 230  # three list pages of contacts/companies/deals
# The OAuth dance of tests/test_oauth.py (tests/oauth_helpers.py): what its sync reads, the least scopes that
# needs (in order), (raw resource, sandbox object) compared after it, sandbox options.
OAUTH_DANCE = {"objects": ("contacts", "owners"),
               "least_scopes": ("oauth", "crm.objects.contacts.read", "crm.objects.owners.read"),
               "checks": (("contacts", "contacts"),), "options": {"rotate_refresh_tokens": True}}


TRUTH_TABLES = {  # canonical table -> sandbox objects it is made of
    "crm_contacts": ("contacts",), "crm_accounts": ("companies",), "crm_opportunities": ("deals",),
    "crm_users": ("owners",), "crm_notes": ("notes",), "crm_tasks": ("tasks",),
    "crm_engagements": ("calls", "meetings", "emails"),
}


def _assert_equals_truth(server) -> None:
    for table, objects in TRUTH_TABLES.items():
        expected = {r["id"]: r for name in objects for r in truth(server, name)}
        rows = canonical(table, "hubspot")
        assert set(rows) == set(expected), f"{table}: ids differ from the sandbox's {objects}"
        for remote_id, record in expected.items():
            row = rows[remote_id]
            assert row["is_deleted"] == record["deleted"], f"{table} {remote_id}: is_deleted"
            if record["deleted"]:
                assert row["deleted_at"] is not None
        key = id_column(table)
        count = query(f"select count(*) as n, count(distinct {key}) as d from canonical.{table}")[0]
        assert count["n"] == count["d"], f"{table} has duplicate ids"
    # Leads are the contacts whose lifecycle stage is `lead`.
    leads = {r["id"] for r in truth(server, "contacts") if r["record"]["properties"]["lifecyclestage"] == "lead"}
    assert set(canonical("crm_leads", "hubspot")) == leads


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_full_then_incremental_equals_sandbox_truth(warehouse, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=SCALE)
    connection = connect_sandbox(server, "hubspot-acme")

    first = sync(connection)
    assert first.status == "success", first.error
    assert first.records["contacts"] == SCALE
    assert build(lineage("hubspot")).success
    _assert_equals_truth(server)
    assert_stage_flags_match_status("hubspot", stages_carry_outcome=True)

    # Field values of a sample match the sandbox.
    contacts = {r["id"]: r["record"] for r in truth(server, "contacts")}
    rows = canonical("crm_contacts", "hubspot")
    for remote_id in list(contacts)[:25]:
        props = contacts[remote_id]["properties"]
        row = rows[remote_id]
        assert (row["first_name"], row["last_name"]) == (props["firstname"], props["lastname"])
        assert json.loads(row["emails"]) == [{"value": props["email"], "type": "WORK"}]
        assert row["tenant_id"] == "acme"
    deals = {r["id"]: r["record"]["properties"] for r in truth(server, "deals")}
    opportunities = canonical("crm_opportunities", "hubspot")
    rates = reporting_rates("USD")
    for remote_id, props in list(deals.items())[:25]:
        assert str(opportunities[remote_id]["amount"]) == props["amount"]
        converted = expected_amount_reporting(Decimal(props["amount"]), props["deal_currency_code"], rates)
        assert converted is not None and opportunities[remote_id]["amount_reporting"] == converted, remote_id
        expected_status = "WON" if props["hs_is_closed_won"] == "true" else (
            "LOST" if props["hs_is_closed"] == "true" else "OPEN")
        assert opportunities[remote_id]["status"] == expected_status

    # Foreign keys resolve to canonical ids.
    dangling = query("""
        select count(*) as n from canonical.crm_contacts c
        left join canonical.crm_accounts a on a.account_id = c.account_id
        where c.account_id is not null and a.account_id is null""")[0]["n"]
    assert dangling == 0

    # Creates, updates, deletes between syncs -> incremental sync -> equals truth again.
    changed = {}
    for object_name in CRM_OBJECTS:
        changed[object_name] = mutate(server, object_name, create=4, update=6, delete=3)
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    assert build(lineage("hubspot")).success
    _assert_equals_truth(server)
    assert_stage_flags_match_status("hubspot", stages_carry_outcome=True)
    updated_id = changed["contacts"]["update"][0]
    new_title = next(r for r in truth(server, "contacts") if r["id"] == updated_id)["record"]["properties"]["jobtitle"]
    assert new_title.startswith("updated")
    assert query("select count(*) as n from staging.stg_hubspot__contacts where remote_id = ? and job_title = ?",
                 [updated_id, new_title])[0]["n"] == 1

    # The incremental run read only what changed: one search page per CRM object, no full list pages.
    log = request_log(server)
    searches = [r for r in log if r["path"].endswith("/search") and r["status"] == 200]
    assert sorted(r["path"].split("/")[4] for r in searches) == sorted(CRM_OBJECTS)
    full_lists = [r for r in log if r["path"].startswith("/crm/v3/objects/") and "archived=false" in r["query"]]
    assert full_lists == []


def test_full_sync_makes_minimum_list_calls(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=SCALE)
    connection = connect_sandbox(server, objects=["contacts"])
    assert sync(connection).status == "success"
    lists = [r for r in request_log(server) if r["path"] == "/crm/v3/objects/contacts" and "archived=false" in r["query"]]
    assert len(lists) == math.ceil(SCALE / 100)
    assert all("limit=100" in r["query"] for r in lists)


def test_search_cap_is_worked_around(data_dir, sandbox_factory, connect_sandbox):
    """More than 10,000 changes since the cursor: the source restarts the search from the last cursor."""
    server = sandbox_factory("hubspot", scale=10_500, rate_limits=False)
    connection = connect_sandbox(server, objects=["contacts"])
    assert sync(connection).status == "success"
    # Every record changes: the incremental pass sees 10,500 > 10,000 results.
    mutate(server, "contacts", update=10_500)
    result = sync(connection)
    assert result.status == "success", result.error
    assert build(["stg_hubspot__contacts"]).success
    stale = query("select count(*) as n from staging.stg_hubspot__contacts where job_title not like 'updated%'")
    assert stale[0]["n"] == 0
    assert query("select count(*) as n from staging.stg_hubspot__contacts")[0]["n"] == 10_500


@pytest.mark.parametrize("fault,error_class", [("unauthorized", ErrorClass.AUTH_EXPIRED),
                                                ("malformed", ErrorClass.PROVIDER_CONTRACT)])
def test_bad_answers_give_clear_errors_and_keep_loaded_data(data_dir, sandbox_factory, connect_sandbox,
                                                            fault, error_class):
    server = sandbox_factory("hubspot", scale=120)
    connection = connect_sandbox(server, objects=["contacts", "companies"])
    assert sync(connection).status == "success"
    before = query("select count(*) as n from raw_hubspot.contacts")[0]["n"]
    mutate(server, "contacts", update=5)
    if fault == "unauthorized":
        bad = connect_sandbox(server, "hubspot-acme-revoked", token="revoked-token",
                              objects=["contacts", "companies"])
    else:
        set_faults(server, invalid_json_rate=1.0)
        bad = connection
    result = sync(bad)
    assert result.status == "failed"
    assert result.error.error_class == error_class
    message = str(result.error)
    assert "provider=hubspot" in message and "endpoint=/crm/v3/objects/" in message
    assert error_class.value in message and "What to do" in message
    assert query("select count(*) as n from raw_hubspot.contacts")[0]["n"] == before
    errors = query("select error_class, provider, endpoint from ops.sync_errors")
    assert errors and errors[-1]["error_class"] == error_class.value


# The fault, kill and storm suites' row for this provider (tests/reliability/providers.py).
RELIABILITY = ProviderCase(
    generic_truth((("contacts", "crm_contacts"), ("companies", "crm_accounts"), ("deals", "crm_opportunities"),
              ("owners", "crm_users"))),
    {"contacts": CRUD, "companies": CRUD, "deals": CRUD}, scale=230)
