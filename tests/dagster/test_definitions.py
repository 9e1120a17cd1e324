"""Dagster: the definitions load, and every asset materialises in-process with its GE checks."""

from __future__ import annotations

import importlib
import sys

from dagster import AssetKey, materialize

from canonry.providers import spec
from tests.helpers import query

SCALE = 60  # one page per HubSpot object, and leads among the contacts (crm_leads' GE suite needs rows)


def _load_definitions(monkeypatch, config_path):
    monkeypatch.setenv("CANONRY_CONFIG", str(config_path))
    for name in [m for m in sys.modules if m.startswith("dagster_project")]:
        del sys.modules[name]
    return importlib.import_module("dagster_project.definitions")


def test_definitions_load_and_materialise_with_checks(data_dir, sandbox_factory, connect_sandbox, tmp_path,
                                                      monkeypatch):
    server = sandbox_factory("hubspot", scale=SCALE)
    connect_sandbox(server, "hubspot-acme", schedule="*/30 * * * *")
    module = _load_definitions(monkeypatch, tmp_path / "connections.yml")
    defs = module.defs

    # Lineage: raw -> staging -> canonical.
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/hubspot/contacts", "staging/stg_hubspot__contacts", "canonical/crm_contacts"} <= keys
    staging = graph.get(AssetKey(["staging", "stg_hubspot__contacts"]))
    assert AssetKey(["raw", "hubspot", "contacts"]) in staging.parent_keys
    assert defs.resolve_schedule_def("sync_hubspot_acme").cron_schedule == "*/30 * * * *"
    # Retention (canonry retention apply) runs daily as its own job.
    assert defs.resolve_schedule_def("retention").job_name == "retention_job" == defs.resolve_job_def("retention_job").name

    result = materialize([*module.INGESTION, module.canonry_dbt_assets, *module.CHECKS],
                         resources={"dbt": module.dbt_resource()}, raise_on_error=False, partition_key="hubspot-acme")
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    gate = {e.asset_key.to_user_string() for e in evaluations if e.check_name.startswith("ge_")}
    assert gate == {f"canonical/{t}" for t in spec("hubspot").canonical_tables}
    # dbt's schema tests arrive as asset checks too; every check passed.
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    assert query("select count(*) as n from canonical.crm_contacts")[0]["n"] == SCALE
    # The GE rows carry the Dagster run id: a failed check links to its run.
    run_id = result.dagster_run.run_id
    assert query("select count(*) as n from ops.validation_results where run_id = ?", [run_id])[0]["n"] > 0
