"""The PostgreSQL warehouse's two benchmarks (in `make bench-full`):

    python -m benchmarks.pg_bench [--size 100000] [--jobs-scale 2000] [--only el|jobs]

1. `el`: N HubSpot core objects (contacts, companies, deals per N; owners; pipelines) synced, built (dbt,
   HubSpot's lineage) and validated into DuckDB and into PostgreSQL, one after the other in the same run
   against the same sandbox (its own process, no rate limits, page cache: `benchmarks/run.py`'s). Each job
   is `benchmarks/worker.py canonry` in a fresh process; end-to-end and extract-load records/s side by side,
   and PostgreSQL / DuckDB ratios.
2. `jobs`: the six demo connections (all six providers) at `--jobs-scale` records per object, the sandboxes'
   default rate limits on, synced into PostgreSQL by `canonry sync --no-transform` sequentially (`--jobs 1`)
   and then in parallel (`--jobs 6`), each into a fresh database and data dir. Reported: the parallel wall
   time against the slowest connection's own sync time in the sequential run (target ≤ 1.2: when the work is
   mostly waiting on rate budgets, parallel syncs cost the slowest one), and sum / parallel.

Databases are created as `postgres_bench_<hex>` on `--admin-url` (default the local server) and dropped.
Results: benchmarks/results/pg-<timestamp>.json (and .md). Ratios are taken within the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run import RESULTS, ROOT, Sandbox, child_env, log, run_worker


def database(tag: str):
    """A scratch database on the local server (`postgres_bench_<tag>_<hex>`), dropped afterwards."""
    from canonry.postgres import scratch_database

    return scratch_database(f"postgres_bench_{tag}")


def records_per_s(result: dict) -> dict:
    records = sum(result["records"].values())
    e2e = result["sync_s"] + result["transform_s"] + result["validate_s"]
    return {"records": records, "el_s": result["sync_s"], "e2e_s": round(e2e, 2),
            "el_records_per_s": round(records / result["sync_s"], 1), "e2e_records_per_s": round(records / e2e, 1),
            "dbt_s": result["transform_s"], "gate_s": result["validate_s"], "calls": result["calls"],
            "gate_success": result["gate_success"], "peak_rss_mb": result["peak_rss_mb"]}


def bench_el(size: int, work: Path) -> dict:
    sandbox = Sandbox(size)
    out: dict = {"size": size}
    try:
        for warehouse in ("duckdb", "postgres"):
            log(f"el: N = {size}, {warehouse} …")
            if warehouse == "duckdb":
                out[warehouse] = records_per_s(run_worker("canonry", sandbox.base_url, work / "el-duckdb"))
            else:
                with database("el") as url:
                    out[warehouse] = records_per_s(run_worker("canonry", sandbox.base_url, work / "el-postgres",
                                                              "--warehouse", url))
            log(f"  {out[warehouse]}")
    finally:
        sandbox.stop()
    for figure in ("el_records_per_s", "e2e_records_per_s"):
        out[f"postgres_vs_duckdb_{figure}"] = round(out["postgres"][figure] / out["duckdb"][figure], 3)
    return out


def _demo_setup(data: Path, scale: int, url: str):
    """Demo sandboxes (rate limits on), their credentials and OAuth grants in `data`; the resolved file."""
    os.environ.update(CANONRY_DATA_DIR=str(data / "data"), CANONRY_KEY_FILE=str(data / "keys" / "master.key"),
                      CANONRY_WAREHOUSE=url)
    from canonry.demo import (
        authorise_oauth_connections,
        demo_config,
        demo_environment,
        resolved_config,
        start_demo_sandboxes,
    )

    demo_environment()
    sandboxes = start_demo_sandboxes(demo_config(require_tokens=False), scale=scale)
    config, path = resolved_config(sandboxes, require_tokens=False)
    authorise_oauth_connections(config, lambda message: None)
    return sandboxes, path


def _sync(path: Path, jobs: int) -> tuple[float, dict]:
    command = [sys.executable, "-m", "canonry.cli", "sync", "--config", str(path), "--no-transform", "--json",
               "--jobs", str(jobs)]
    env = {**child_env(), **{k: os.environ[k] for k in ("CANONRY_DATA_DIR", "CANONRY_KEY_FILE", "CANONRY_WAREHOUSE")}}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    document = json.loads(done.stdout.strip().splitlines()[-1])
    if done.returncode != 0:
        raise RuntimeError(f"sync --jobs {jobs} failed: {done.stderr[-3000:]}")
    return wall, {s["connection_id"]: s["duration_s"] for s in document["syncs"]}


def bench_jobs(scale: int, work: Path) -> dict:
    out: dict = {"scale": scale}
    for jobs in (1, 6):
        with database(f"jobs{jobs}") as url:
            sandboxes, path = _demo_setup(work / f"jobs-{jobs}", scale, url)
            try:
                log(f"jobs: six demo connections at scale {scale}, --jobs {jobs} …")
                wall, per_connection = _sync(path, jobs)
            finally:
                sandboxes.stop()
        out[f"jobs_{jobs}"] = {"wall_s": round(wall, 2), "sync_s": per_connection}
        log(f"  wall {wall:.1f}s, per connection {per_connection}")
    sequential, parallel = out["jobs_1"], out["jobs_6"]
    slowest = max(sequential["sync_s"].values())
    out["slowest_single_s"] = slowest
    out["parallel_vs_slowest"] = round(parallel["wall_s"] / slowest, 3)
    out["sum_vs_parallel"] = round(sum(sequential["sync_s"].values()) / parallel["wall_s"], 2)
    out["sequential_wall_vs_parallel_wall"] = round(sequential["wall_s"] / parallel["wall_s"], 2)
    return out


def markdown(result: dict) -> str:
    lines = [f"# PostgreSQL benchmarks {result['started']} (load {result['load_start']} → {result['load_end']})", ""]
    if "el" in result:
        el = result["el"]
        lines += [f"## HubSpot core objects, N = {el['size']}: DuckDB vs PostgreSQL", "",
                  "| warehouse | records | EL s | EL rec/s | dbt s | gate s | e2e s | e2e rec/s |", "|---|---|---|---|---|---|---|---|"]
        for name in ("duckdb", "postgres"):
            r = el[name]
            lines.append(f"| {name} | {r['records']} | {r['el_s']} | {r['el_records_per_s']} | {r['dbt_s']} | "
                         f"{r['gate_s']} | {r['e2e_s']} | {r['e2e_records_per_s']} |")
        lines += ["", f"PostgreSQL / DuckDB: EL {el['postgres_vs_duckdb_el_records_per_s']}, "
                      f"e2e {el['postgres_vs_duckdb_e2e_records_per_s']}", ""]
    if "jobs" in result:
        j = result["jobs"]
        lines += [f"## Six demo connections at scale {j['scale']} on PostgreSQL, rate limits on", "",
                  f"- sequential (`--jobs 1`): wall {j['jobs_1']['wall_s']} s; per connection {j['jobs_1']['sync_s']}",
                  f"- parallel (`--jobs 6`): wall {j['jobs_6']['wall_s']} s; per connection {j['jobs_6']['sync_s']}",
                  f"- parallel wall / slowest connection's own sync: **{j['parallel_vs_slowest']}** (target ≤ 1.2)",
                  f"- sum of sequential syncs / parallel wall: {j['sum_vs_parallel']}; sequential wall / parallel "
                  f"wall: {j['sequential_wall_vs_parallel_wall']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--jobs-scale", type=int, default=2_000)
    parser.add_argument("--only", choices=["el", "jobs"])
    args = parser.parse_args(argv)
    result: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                    "load_start": os.getloadavg()[0], "command": sys.argv}
    with tempfile.TemporaryDirectory(prefix="canonry-pg-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "el"):
            result["el"] = bench_el(args.size, work)
        if args.only in (None, "jobs"):
            result["jobs"] = bench_jobs(args.jobs_scale, work)
    result["load_end"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"pg-{stamp}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"pg-{stamp}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
