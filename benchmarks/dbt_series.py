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
import json
import os
import sys
import time
from pathlib import Path

cmd, d = sys.argv[1], Path(sys.argv[2])
os.environ["CANONRY_DATA_DIR"] = str(d)
os.environ.setdefault("CANONRY_KEY_FILE", str(d / "keys" / "master.key"))
MARTS = ["crm_contacts", "crm_accounts", "crm_opportunities", "crm_leads", "crm_users", "crm_stages",
         "crm_notes", "crm_tasks", "crm_engagements"]
if cmd in ("build", "fullrefresh"):
    from canonry.transform import build_for, lineage_selection, run_dbt
    t = time.perf_counter()
    if cmd == "build":
        r = build_for(["hubspot"]) if len(sys.argv) < 4 or not sys.argv[3] else run_dbt(["build", "--select", *sys.argv[3].split()])
    else:
        r = run_dbt(["build", "--full-refresh", "--select", *lineage_selection(["hubspot"])])
    wall = time.perf_counter() - t
    rr = json.loads((d / "dbt_target" / "run_results.json").read_text())
    label = sys.argv[4] if len(sys.argv) > 4 else cmd
    (d / f"rr-{label}-{int(time.time())}.json").write_text(json.dumps(rr))
    nodes = sorted(((x["execution_time"], x["unique_id"]) for x in rr["results"]), reverse=True)
    models = sum(t for t, u in nodes if u.startswith("model."))
    tests = sum(t for t, u in nodes if u.startswith("test."))
    print(f"{label}: success={r.success} wall={wall:.1f}s nodes={len(nodes)} sum_models={models:.1f}s sum_tests={tests:.1f}s elapsed={rr['elapsed_time']:.1f}s")
    for t_, u in nodes[:8]:
        print(f"   {t_:7.2f}  {u}")
    if not r.success:
        print(r.error, [(n.name, n.message) for n in r.failures()][:5])
elif cmd == "apply":
    import duckdb
    snap = Path(sys.argv[3]) / "warehouse.duckdb"
    c = duckdb.connect(str(d / "warehouse.duckdb"))
    c.execute(f"attach '{snap}' as s (read_only)")
    for schema in ("raw_hubspot", "ops"):
        for (t,) in c.execute(f"select table_name from duckdb_tables() where database_name='s' and schema_name='{schema}'").fetchall():
            c.execute(f"create or replace table {schema}.{t} as select * from s.{schema}.{t}")
    c.close()
elif cmd == "compare":
    import duckdb
    c = duckdb.connect(str(d / "warehouse.duckdb"), read_only=True)
    c.execute(f"attach '{Path(sys.argv[3]) / 'warehouse.duckdb'}' as o (read_only)")
    ok = True
    for m in MARTS + ["stg_hubspot__contacts"]:
        sch = "staging" if m.startswith("stg") else "canonical"
        a = c.execute(f"select count(*) from (select * from {sch}.{m} except all select * from o.{sch}.{m})").fetchone()[0]
        b = c.execute(f"select count(*) from (select * from o.{sch}.{m} except all select * from {sch}.{m})").fetchone()[0]
        n = c.execute(f"select count(*) from {sch}.{m}").fetchone()[0]
        print(m, n, "diff", a, b)
        ok &= a == b == 0
    print("IDENTICAL" if ok else "DIFFERENT")
