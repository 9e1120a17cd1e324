"""dbt as a first-class project: the canonical contract rendered into dbt, and `dbt` run as a user runs it.

The dbt commands run in a subprocess, from the project's `dbt/` directory, with the shipped profile and no
Canonry environment variable: the profile's default warehouse (`../data/warehouse.duckdb`) must be the one
used. So that the test never touches the repository's own data dir, the dbt project is copied into a
temporary `<root>/dbt` next to a `<root>/data` holding a warehouse synced from two sandboxes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from canonry import canonical, dbt_yml
from canonry.warehouse import PROJECT_ROOT

SCALE = 8


def test_every_canonical_column_has_a_type_a_class_an_owner_and_a_description():
    for table in canonical.TABLES:
        for column in canonical.columns(table):
            doc = canonical.column_doc(table, column)
            assert doc.classification in canonical.CLASSIFICATIONS, (table, column)
            assert doc.type in canonical.WAREHOUSE_TYPES, (table, column)
            assert doc.description.strip() and doc.owner, (table, column)
    # Every override names a real column (a renamed column cannot keep a stale entry).
    for key in (*canonical.TABLE_COLUMN_DOCS, *canonical.FOREIGN_KEYS):
        table, column = key.split(".")
        assert column in canonical.columns(table), key


def test_a_column_without_a_class_is_an_error(monkeypatch):
    monkeypatch.setitem(canonical.TABLES, "crm_contacts", (*canonical.TABLES["crm_contacts"], "shoe_size"))
    with pytest.raises(KeyError, match="crm_contacts.shoe_size has no type/class/description"):
        dbt_yml.render()


def test_generated_dbt_properties_are_current():
    assert dbt_yml.CANONICAL_YML.read_text() == dbt_yml.render(), (
        "dbt/models/marts/_canonical__models.yml is stale: run `python -m canonry.dbt_yml`")
    properties = yaml.safe_load(dbt_yml.CANONICAL_YML.read_text())
    assert [m["name"] for m in properties["models"]] == list(canonical.TABLES)
    for model in properties["models"]:
        assert model["config"]["contract"] == {"enforced": True}
        assert [c["name"] for c in model["columns"]] == list(canonical.columns(model["name"]))
    # dbt_project.yml's `canonical_columns` var (the unions' column order) is the contract's too.
    project = yaml.safe_load((PROJECT_ROOT / "dbt" / "dbt_project.yml").read_text())
    assert project["vars"]["canonical_columns"] == {t: list(canonical.columns(t)) for t in canonical.TABLES}, (
        "dbt/dbt_project.yml vars.canonical_columns differs from canonry/canonical.py")


def _dbt(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`dbt <args>` from `<project>/dbt`, as a user types it: no CANONRY_* variable, the shipped profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANONRY_", "DBT_"))}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    dbt = Path(os.sys.executable).parent / "dbt"
    done = subprocess.run([str(dbt), *args], cwd=project / "dbt", env=env, capture_output=True, text=True,
                          timeout=600)
    if check:
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<root>/dbt` (a copy of the project) and `<root>/data/warehouse.duckdb` synced from Pipedrive and
    Ashby sandboxes (one CRM, one ATS: the other providers' models build empty)."""
    from canonry.pipeline import sync
    from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
    from tests.conftest import write_connections

    root = tmp_path_factory.mktemp("dbt-project")
    shutil.copytree(PROJECT_ROOT / "dbt", root / "dbt", ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    servers = [start_sandbox(slug, seed=3, scale=SCALE) for slug in ("pipedrive", "ashby")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CANONRY_DATA_DIR", str(root / "data"))
        patch.delenv("CANONRY_WAREHOUSE", raising=False)
        patch.setenv("CANONRY_KEY_FILE", str(root / "keys" / "master.key"))
        entries = []
        for server in servers:
            slug = server.simulator.slug
            patch.setenv(f"CANONRY_TEST_{slug.upper()}", DEFAULT_TOKENS[slug])
            entries.append({"id": f"{slug}-acme", "tenant": "acme", "provider": slug, "base_url": server.base_url,
                            "auth": {"kind": "api_key", "secret": f"env:CANONRY_TEST_{slug.upper()}"}})
        try:
            config = write_connections(root / "connections.yml", entries)
            for connection in config.connections:
                assert sync(connection).status == "success"
        finally:
            for server in servers:
                server.stop()
    return root


def test_dbt_build_docs_and_freshness_run_from_the_dbt_directory_without_canonry_variables(project):
    _dbt(project, "build")
    _dbt(project, "docs", "generate")
    freshness = _dbt(project, "source", "freshness", "--select", "source:pipedrive", "source:ashby")
    assert "freshness of pipedrive" in freshness.stdout.lower() or "pass" in freshness.stdout.lower()

    catalog = json.loads((project / "dbt" / "target" / "catalog.json").read_text())
    for table in canonical.TABLES:
        node = catalog["nodes"][f"model.canonry.{table}"]
        # The table's and every column's comment come from the warehouse (persist_docs: COMMENT ON).
        assert node["metadata"]["comment"] == dbt_yml.model_properties(table)["description"]
        for column in canonical.columns(table):
            assert node["columns"][column]["comment"] == dbt_yml.column_description(
                canonical.column_doc(table, column)), (table, column)
    # The profile defaulted to the warehouse next to the project, and dbt built the synced rows into it.
    import duckdb

    conn = duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True)
    try:
        built = dict(conn.execute("select provider, count(*) from canonical.crm_contacts group by 1").fetchall())
        candidates = conn.execute("select count(*) from canonical.ats_candidates where provider = 'ashby'").fetchone()
    finally:
        conn.close()
    assert set(built) == {"pipedrive"} and built["pipedrive"] > 0 and candidates[0] > 0
    assert {"rev_pipedrive__persons"} <= {e.split(".")[-1] for e in _exposure_parents(project)}


def _exposure_parents(project: Path) -> set[str]:
    manifest = json.loads((project / "dbt" / "target" / "manifest.json").read_text())
    return {parent for exposure in manifest["exposures"].values() for parent in exposure["depends_on"]["nodes"]}


def test_changing_a_column_type_in_the_contract_fails_the_build_with_dbts_contract_error(project, monkeypatch):
    monkeypatch.setitem(canonical.TABLE_COLUMN_DOCS, "crm_contacts.first_name", ("integer", "pii", "Given name."))
    properties = project / "dbt" / "models" / "marts" / "_canonical__models.yml"
    original = properties.read_text()
    dbt_yml.write(properties)
    try:
        # `+`: the providers' models too, so the mart unions real rows whichever test ran first (built alone
        # over no intermediate model, the mart selects typed nulls from the contract itself: nothing to fail).
        done = _dbt(project, "build", "--select", "+crm_contacts", "--exclude", "resource_type:test", check=False)
    finally:
        properties.write_text(original)
    assert done.returncode != 0
    assert "This model has an enforced contract that failed" in done.stdout, done.stdout[-4000:]
    assert "first_name" in done.stdout


def test_raw_tables_are_looked_up_in_the_catalog_not_in_dbts_relation_cache():
    """dbt marks a schema it lists on first use as cached at the first relation it adds, while that thread
    still adds the rest: a model compiling in another thread saw a partial raw schema and compiled to no rows
    (a canonical table missing Lever interviews under load). `raw_exists` asks the catalog every time."""
    dbt_dir = PROJECT_ROOT / "dbt"
    users = [str(path.relative_to(dbt_dir)) for folder in ("macros", "models") for path in (dbt_dir / folder).rglob("*.sql")
             if "adapter.get_relation(" in path.read_text()]
    assert users == [], f"use raw_exists(relation) instead of adapter.get_relation in {users}"
    assert "raw_exists" in (dbt_dir / "macros" / "canonical.sql").read_text()
