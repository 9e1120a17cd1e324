"""One measured job, run in its own process by `benchmarks.run` (fresh interpreter = clean peak RSS).

    python -m benchmarks.worker JOB --base-url URL --data-dir DIR [--objects a,b] [--mode full|incremental]

Jobs: `canonry` (sync, then dbt build, then the GE gate, timed per phase), `baseline` (a plain dlt
pipeline with default settings over the same list pages), `serve` (the sandbox's own serving rate:
fetch every list page, no parsing). Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import psutil

from canonry.sandbox import DEFAULT_TOKENS  # noqa: E402

TOKEN = DEFAULT_TOKENS["hubspot"]  # the sandbox's own credential


class PeakRss:
    """Samples this process's RSS every 20 ms; `peak()` also checks getrusage's high-water mark."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.value = self.process.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            self.value = max(self.value, self.process.memory_info().rss)

    def reset(self) -> None:
        self.value = self.process.memory_info().rss

    def peak_mb(self) -> float:
        return round(max(self.value, self.process.memory_info().rss) / 2**20, 1)


def lifetime_peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def trace_steps(pipeline) -> dict[str, float]:
    """Seconds per dlt step (extract, normalize, load) of the pipeline's last run."""
    trace = pipeline.last_trace
    out: dict[str, float] = {}
    for step in trace.steps if trace else []:
        if step.step in ("extract", "normalize", "load") and step.finished_at and step.started_at:
            out[step.step] = round((step.finished_at - step.started_at).total_seconds(), 4)
    return out


def connection_for(base_url: str, objects: list[str] | None, config_path: Path):
    import yaml

    from canonry.validation import load_connections

    os.environ["CANONRY_BENCH_HUBSPOT_TOKEN"] = TOKEN
    entry = {"id": "hubspot-bench", "tenant": "bench", "provider": "hubspot",
             "auth": {"kind": "api_key", "secret": "env:CANONRY_BENCH_HUBSPOT_TOKEN"},
             "base_url": base_url, "lookback": "0s"}
    if objects:
        entry["objects"] = objects
    config_path.write_text(yaml.safe_dump({"version": 1, "connections": [entry]}, sort_keys=False))
    return load_connections(config_path).get("hubspot-bench")


def job_canonry(args: argparse.Namespace, rss: PeakRss) -> dict:
    """Canonry's own path: sync (raw), dbt build (staging -> canonical), GE gate; each phase timed."""
    from canonry.pipeline import sync

    objects = args.objects.split(",") if args.objects else None
    connection = connection_for(args.base_url, objects, Path(args.data_dir) / "connections.yml")
    out: dict = {"job": "canonry", "mode": args.mode, "objects": objects, "budget": args.budget,
                 "transform_select": args.transform_select or None}
    if args.budget == "unlimited":
        # Canonry's client-side rate budget is seeded from HubSpot's published limit (100 requests per
        # 10 s = 1,000 list records/s). The sandbox runs with --no-rate-limits and the baseline and the
        # peer have no budget, so the benchmark lifts it for its own connection: it measures the
        # pipeline, not the limit (README.md, "rate budget"). The same for the search budget (4/s).
        from canonry.http_budget import budget_for

        budget_for("hubspot", connection.id, (1_000_000, 1.0))
        budget_for("hubspot-search", connection.id, (1_000_000, 1.0))
    rss.reset()
    started = time.perf_counter()
    result = sync(connection, full_refresh=args.mode == "full_refresh")
    out["sync_s"] = round(time.perf_counter() - started, 4)
    if result.status != "success":
        raise SystemExit(f"sync failed: {result.error}")
    out["sync_peak_rss_mb"] = rss.peak_mb()
    out["records"] = result.records
    out["calls"] = result.calls
    out["steps"] = result.steps  # every batch (checkpoint) of the sync, summed
    if args.sync_only:
        out["peak_rss_mb"] = lifetime_peak_mb()
        return out

    from canonry.transform import build, lineage_selection

    if args.transform_select == "all":
        select = None
    elif args.transform_select:
        select = args.transform_select.split(",")
    else:
        select = lineage_selection(["hubspot"])
    out["transform_select"] = select
    rss.reset()
    started = time.perf_counter()
    built = build(select)
    out["transform_s"] = round(time.perf_counter() - started, 4)
    out["transform_peak_rss_mb"] = rss.peak_mb()
    if not built.success:
        raise SystemExit(f"dbt build failed: {built.error or [n.name for n in built.failures()]}")
    out["dbt_nodes"] = len(built.nodes)

    from expectations.gate import run_gate, tables_for_connections

    rss.reset()
    started = time.perf_counter()
    # The tables this connection promises (only those its objects feed, from dbt lineage).
    tables = tables_for_connections([connection])
    if args.gate_scope == "both":
        # The run-scoped gate first (it pays GE's import and context), then the full one.
        scoped = run_gate(tables, load_ids=result.load_ids)
        out["validate_run_s"] = round(time.perf_counter() - started, 4)
        out["validate_run_peak_rss_mb"] = rss.peak_mb()
        out["gate_run_success"] = scoped.success
        rss.reset()
        started = time.perf_counter()
    gate = run_gate(tables)
    out["validate_s"] = round(time.perf_counter() - started, 4)
    out["validate_peak_rss_mb"] = rss.peak_mb()
    out["gate_success"] = gate.success
    out["gate_failed"] = [f"{c.table}.{c.expectation}({c.column})" for c in gate.failed()][:10]
    out["peak_rss_mb"] = lifetime_peak_mb()
    return out


def job_baseline(args: argparse.Namespace, rss: PeakRss) -> dict:
    """A plain dlt pipeline with default settings: row dicts from the same list pages (same endpoint,
    page size, properties and associations), default normaliser, default loader format."""
    import dlt
    import requests

    from sources.hubspot.settings import CRM_OBJECTS as SPECS
    from sources.hubspot.settings import LIST_PAGE_SIZE, OBJECTS, OBJECTS_PATH, OWNERS_PATH, PIPELINES_PATH

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    calls = 0

    def pages(url: str, params: dict):
        nonlocal calls
        after = None
        while True:
            query = dict(params, after=after) if after else params
            response = session.get(url, params=query, timeout=60)
            calls += 1
            response.raise_for_status()
            body = response.json()
            yield body["results"]
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return

    def crm(name: str):
        spec = SPECS[name]
        params = {"limit": LIST_PAGE_SIZE, "properties": ",".join(spec.properties), "archived": "false"}
        if spec.associations:
            params["associations"] = ",".join(spec.associations)
        for archived in ("false", "true"):
            yield from pages(args.base_url + OBJECTS_PATH.format(object=name), dict(params, archived=archived))

    def owners():
        for archived in ("false", "true"):
            yield from pages(args.base_url + OWNERS_PATH, {"limit": 500, "archived": archived})

    def pipelines():
        nonlocal calls
        calls += 1
        yield session.get(args.base_url + PIPELINES_PATH, timeout=60).json()["results"]

    objects = args.objects.split(",") if args.objects else list(OBJECTS)

    @dlt.source(name="hubspot_baseline")
    def baseline_source():
        for name in objects:
            if name in SPECS:
                yield dlt.resource(crm(name), name=name, primary_key="id", write_disposition="append")
            elif name == "owners":
                yield dlt.resource(owners(), name="owners", write_disposition="append")
            elif name == "pipelines":
                yield dlt.resource(pipelines(), name="pipelines", write_disposition="append")

    # The one setting changed from dlt's defaults, only so the baseline fits in memory beyond N = 10k: with
    # one insert_values file per table, DuckDB parses each file as one statement (~1 GB per 10k rows, in
    # parallel per table: 3.1 GB at N = 10k, ~30 GB at 100k). 2,000-row files bound that (~3 GB at any N)
    # and make the baseline faster, not slower (N = 10k: 26 s vs 37 s), so the ratios stay conservative.
    os.environ.setdefault("DATA_WRITER__FILE_MAX_ITEMS", "2000")
    data = Path(args.data_dir)
    pipeline = dlt.pipeline(pipeline_name="bench_baseline", pipelines_dir=str(data / "dlt"),
                            destination=dlt.destinations.duckdb(credentials=str(data / "baseline.duckdb")),
                            dataset_name="raw_baseline")
    rss.reset()
    started = time.perf_counter()
    pipeline.run(baseline_source())
    elapsed = time.perf_counter() - started
    counts = pipeline.last_trace.last_normalize_info.row_counts
    return {"job": "baseline", "sync_s": round(elapsed, 4), "steps": trace_steps(pipeline), "calls": calls,
            "records": {t: n for t, n in counts.items() if t in objects},
            "child_rows": {t: n for t, n in counts.items() if t not in objects and not t.startswith("_dlt")},
            "sync_peak_rss_mb": rss.peak_mb(), "peak_rss_mb": lifetime_peak_mb()}


def job_serve(args: argparse.Namespace, rss: PeakRss) -> dict:
    """The sandbox alone: every list page of the benchmarked CRM objects with Canonry's parameters, bodies
    read, not parsed; twice: `cold` renders every page, `warm` is what the page cache then serves (the
    sandbox runs with --page-cache, so the baseline and Canonry, which run after this job, see warm pages)."""
    import requests

    from sources.hubspot.settings import CRM_OBJECTS as SPECS
    from sources.hubspot.settings import LIST_PAGE_SIZE, OBJECTS_PATH

    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    objects = [o for o in (args.objects.split(",") if args.objects else ["contacts"]) if o in SPECS]
    passes = {}
    for label in ("cold", "warm"):
        records = calls = body_bytes = 0
        started = time.perf_counter()
        for name in objects:
            spec = SPECS[name]
            params = {"limit": LIST_PAGE_SIZE, "properties": ",".join(spec.properties), "archived": "false"}
            if spec.associations:
                params["associations"] = ",".join(spec.associations)
            url = args.base_url + OBJECTS_PATH.format(object=name)
            after = None
            while True:
                response = session.get(url, params=dict(params, after=after) if after else params, timeout=60)
                calls += 1
                content = response.content
                body_bytes += len(content)
                # Only the cursor is looked at (a scan of the tail), never the whole JSON.
                tail = content[-400:].decode()
                records += content.count(b'"archived":')
                marker = tail.rfind('"after":"')
                if marker < 0:
                    break
                after = tail[marker + 9:tail.index('"', marker + 9)]
        passes[label] = {"s": round(time.perf_counter() - started, 4), "calls": calls, "records": records,
                         "mb": round(body_bytes / 2**20, 2)}
    return {"job": "serve", "objects": objects, "passes": passes, "sync_s": passes["warm"]["s"],
            "calls": passes["warm"]["calls"], "records": {"served": passes["warm"]["records"]},
            "cold_s": passes["cold"]["s"], "peak_rss_mb": lifetime_peak_mb()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job", choices=["canonry", "baseline", "serve"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--objects", default="")
    parser.add_argument("--mode", default="auto", choices=["auto", "full_refresh"])
    parser.add_argument("--sync-only", action="store_true")
    parser.add_argument("--transform-select", default="",
                        help="dbt selection for the transform (comma-separated; default: HubSpot's lineage, what "
                             "`canonry sync -c <hubspot connection>` builds; `all`: the whole project)")
    parser.add_argument("--budget", default="unlimited", choices=["unlimited", "published"],
                        help="Canonry's client rate budget: lifted (default) or HubSpot's published limit")
    parser.add_argument("--warehouse", default="", help="CANONRY_WAREHOUSE for the job (default: the data "
                                                        "dir's DuckDB file; benchmarks/pg_bench.py: PostgreSQL)")
    parser.add_argument("--gate-scope", default="full", choices=["full", "both"],
                        help="the gate over every row (default), or first over this run's loads then every row")
    args = parser.parse_args(argv)
    os.environ["CANONRY_DATA_DIR"] = args.data_dir
    os.environ.pop("CANONRY_WAREHOUSE", None)
    if args.warehouse:
        os.environ["CANONRY_WAREHOUSE"] = args.warehouse
    os.environ.setdefault("CANONRY_KEY_FILE", str(Path(args.data_dir) / "keys" / "master.key"))
    for name, value in (("RUNTIME__DLTHUB_TELEMETRY", "false"), ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
                        ("GX_ANALYTICS_ENABLED", "false"), ("DO_NOT_TRACK", "1")):
        os.environ.setdefault(name, value)
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    rss = PeakRss()
    job = {"canonry": job_canonry, "baseline": job_baseline, "serve": job_serve}[args.job]
    result = job(args, rss)
    print(json.dumps(result), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
