"""`canonry sync -c <connection>` builds only the synced providers' dbt lineage (staging, intermediate, the
canonical marts and reverse-ETL models downstream, the seeds they read) and gates the tables they feed; on
a warehouse where other providers were never built, the marts leave them out instead of failing."""

from __future__ import annotations

from typer.testing import CliRunner

from canonry.cli import app
from canonry.transform import build_for, lineage_selection
from tests.helpers import query

runner = CliRunner()


def test_lineage_selection_names_each_provider_and_the_whole_project_for_all():
    assert lineage_selection(["hubspot"]) == ["source:hubspot+", "@source:hubspot,resource_type:seed"]
    from canonry.providers import slugs

    assert lineage_selection(list(slugs())) is None


def test_a_hubspot_sync_builds_only_hubspot_lineage_on_a_fresh_warehouse(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=60)
    connection = connect_sandbox(server, "hubspot-lineage", objects=["contacts", "companies", "owners"])
    from canonry.pipeline import sync

    assert sync(connection).status == "success"
    built = build_for(["hubspot"])
    assert built.success, built.error or [(n.name, n.message) for n in built.failures()]
    names = {n.name for n in built.nodes}
    assert "stg_hubspot__contacts" in names and "crm_contacts" in names
    assert not any(n.startswith(("stg_salesforce", "stg_greenhouse", "int_pipedrive")) for n in names)
    rows = query("select count(*) as n, count(distinct connection_id) as c from canonical.crm_contacts")[0]
    assert rows == {"n": 60, "c": 1}


def test_cli_sync_reports_the_lineage_build_and_gate(data_dir, tmp_path, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=40)
    # Limited to the core objects: the gate checks only the tables they feed (not crm_notes, crm_tasks…).
    connect_sandbox(server, "hubspot-cli", objects=["contacts", "companies", "deals", "owners", "pipelines"])
    result = runner.invoke(app, ["sync", "--config", str(tmp_path / "connections.yml"), "--connection",
                                 "hubspot-cli"])
    assert result.exit_code == 0, result.output
    assert "dbt build: passed" in result.output and "validation: passed" in result.output
    tables = {r["table_name"] for r in query("select distinct table_name from ops.validation_results")}
    assert {"crm_contacts", "crm_accounts", "crm_opportunities"} <= tables
    assert not tables & {"ats_candidates", "ats_jobs", "crm_notes", "crm_tasks", "crm_engagements"}


def test_tables_a_connection_promises_follow_its_objects(data_dir, sandbox_factory, connect_sandbox):
    from expectations.gate import tables_fed_by, tables_for_connections

    server = sandbox_factory("hubspot", scale=20)
    everything = connect_sandbox(server, "hubspot-all")
    limited = connect_sandbox(server, "hubspot-some", objects=["contacts", "deals"])
    assert build_for(["hubspot"]).success  # the manifest holds the lineage
    assert tables_for_connections([everything]) == tables_fed_by(["hubspot"])
    assert set(tables_for_connections([limited])) == {"crm_contacts", "crm_leads", "crm_opportunities"}
    assert tables_for_connections([limited, everything]) == tables_fed_by(["hubspot"])
