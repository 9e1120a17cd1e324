"""dbt-only profile of HubSpot's lineage on warehouse snapshots (benchmarks/README.md, tuning item 14).

Snapshots: a data dir after a full `--sync-only` run of `benchmarks.worker` (snap0), then after each 1%
change (`benchmarks.run.mutate_one_percent`) and another `--sync-only` run (snap1, snap2). Then, each step
its own process (dbt imported and parsed as `canonry sync` does):
    python -m benchmarks.dbt_series build DIR [SELECTORS] [LABEL]   # build_for(["hubspot"]), per-node top 8
    python -m benchmarks.dbt_series apply DIR SNAPSHOT_DIR          # raw_hubspot and ops tables from a snapshot
    python -m benchmarks.dbt_series fullrefresh DIR                 # dbt build --full-refresh of the lineage
    python -m benchmarks.dbt_series compare DIR OTHER_DIR           # marts row for row (except all, both ways)
e.g. copy snap0/warehouse.duckdb to DIR; build; apply snap1; build; apply snap2; build; copy DIR to DIR-fr;
fullrefresh DIR-fr; compare DIR DIR-fr. Node seconds are run_results.json's `execution_time`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

COMPARED = [("canonical", m) for m in ("crm_contacts", "crm_accounts", "crm_opportunities", "crm_leads",
                                       "crm_users", "crm_stages", "crm_notes", "crm_tasks", "crm_engagements")]
COMPARED.append(("staging", "stg_hubspot__contacts"))


def build(data_dir: Path, selectors: str, label: str, full_refresh: bool) -> None:
    from canonry.transform import build_for, lineage_selection, run_dbt

    started = time.perf_counter()
    if full_refresh:
        result = run_dbt(["build", "--full-refresh", "--select", *lineage_selection(["hubspot"])])
    elif selectors:
        result = run_dbt(["build", "--select", *selectors.split()])
    else:
        result = build_for(["hubspot"])
    wall = time.perf_counter() - started
    run_results = json.loads((data_dir / "dbt_target" / "run_results.json").read_text())
    (data_dir / f"rr-{label}-{int(time.time())}.json").write_text(json.dumps(run_results))
    nodes = sorted(((r["execution_time"], r["unique_id"]) for r in run_results["results"]), reverse=True)
    models = sum(seconds for seconds, node in nodes if node.startswith("model."))
    tests = sum(seconds for seconds, node in nodes if node.startswith("test."))
    print(f"{label}: success={result.success} wall={wall:.1f}s nodes={len(nodes)} sum_models={models:.1f}s "
          f"sum_tests={tests:.1f}s elapsed={run_results['elapsed_time']:.1f}s")
    for seconds, node in nodes[:8]:
        print(f"   {seconds:7.2f}  {node}")
    if not result.success:
        print(result.error, [(n.name, n.message) for n in result.failures()][:5])


def apply(data_dir: Path, snapshot_dir: Path) -> None:
    import duckdb

    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    conn.execute(f"attach '{snapshot_dir / 'warehouse.duckdb'}' as s (read_only)")
    for schema in ("raw_hubspot", "ops"):
        tables = conn.execute("select table_name from duckdb_tables() where database_name = 's' and schema_name = ?",
                              [schema]).fetchall()
        for (table,) in tables:
            conn.execute(f"create or replace table {schema}.{table} as select * from s.{schema}.{table}")
    conn.close()


def compare(data_dir: Path, other_dir: Path) -> None:
    import duckdb

    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    conn.execute(f"attach '{other_dir / 'warehouse.duckdb'}' as o (read_only)")
    identical = True
    for schema, model in COMPARED:
        mine, theirs = f"{schema}.{model}", f"o.{schema}.{model}"
        only_mine = conn.execute(f"select count(*) from (from {mine} except all from {theirs})").fetchone()[0]
        only_theirs = conn.execute(f"select count(*) from (from {theirs} except all from {mine})").fetchone()[0]
        rows = conn.execute(f"select count(*) from {mine}").fetchone()[0]
        print(model, rows, "diff", only_mine, only_theirs)
        identical &= only_mine == only_theirs == 0
    print("IDENTICAL" if identical else "DIFFERENT")


def main(argv: list[str]) -> None:
    command, data_dir = argv[0], Path(argv[1])
    os.environ["CANONRY_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("CANONRY_KEY_FILE", str(data_dir / "keys" / "master.key"))
    if command in ("build", "fullrefresh"):
        selectors = argv[2] if command == "build" and len(argv) > 2 else ""
        label = argv[3] if len(argv) > 3 else command
        build(data_dir, selectors, label, full_refresh=command == "fullrefresh")
    elif command == "apply":
        apply(data_dir, Path(argv[2]))
    elif command == "compare":
        compare(data_dir, Path(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
