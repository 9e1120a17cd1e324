"""Read-API benchmark: `GET /v1/crm/contacts?limit=100` paged through N rows, and single-record lookups.

    python -m benchmarks.api_read [--rows 100000] [--lookups 1000]

A HubSpot sandbox (scale 100) is synced and built into a fresh data dir, then canonical.crm_contacts is
grown to N rows of one tenant by copying those rows under new ids (the API reads the table; how the rows
got there does not matter to it). `canonry api serve` runs in its own process; this process is the client
(one connection, sequential requests). Reported: rows/s and p50/p99 latency per page over the whole walk,
lookups/s and p99 of GET /v1/crm/contacts/<id>, and the machine's load average. Results:
benchmarks/results/api-<timestamp>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.run import RESULTS, ROOT, child_env, free_port, log

SEED_SCALE = 100


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def build_warehouse(data_dir: Path, rows: int) -> None:
    """A real sync + build of a small sandbox, then crm_contacts grown to `rows` rows."""
    os.environ.update(CANONRY_DATA_DIR=str(data_dir), BENCH_HUBSPOT_TOKEN="sandbox-hubspot-private-app-token")
    os.environ.pop("CANONRY_WAREHOUSE", None)
    import yaml

    from canonry.pipeline import sync
    from canonry.sandbox import start_sandbox
    from canonry.transform import run_dbt
    from canonry.validation import load_connections
    from canonry.warehouse import connect

    server = start_sandbox("hubspot", scale=SEED_SCALE)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "connections.yml"
        path.write_text(yaml.safe_dump({"connections": [{
            "id": "hubspot-acme", "tenant": "acme", "provider": "hubspot", "base_url": server.base_url,
            "auth": {"kind": "api_key", "secret": "env:BENCH_HUBSPOT_TOKEN"}}]}))
        result = sync(load_connections(path).get("hubspot-acme"))
        assert result.status == "success", result.error
    finally:
        server.stop()
    built = run_dbt(["build", "--select", "@source:hubspot", "--exclude-resource-type", "test"])
    assert built.success, built.error
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    DuckDBConnectionManager.close_all_connections()
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None:
        environment.close()
    conn = connect()
    try:
        seed = conn.execute("select count(*) from canonical.crm_contacts").fetchone()[0]
        copies = -(-rows // seed) - 1
        conn.execute(f"""insert into canonical.crm_contacts
            select c.* replace (md5(c.contact_id || ':' || r.i) as contact_id,
                                c.remote_id || '-' || r.i as remote_id)
            from canonical.crm_contacts as c, range(1, {copies + 1}) as r(i)""")
        conn.execute(f"""delete from canonical.crm_contacts where contact_id in (
            select contact_id from canonical.crm_contacts order by contact_id offset {rows})""")
        conn.execute("update canonical.crm_contacts set is_deleted = false")
        conn.execute("checkpoint")
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=1_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="canonry-api-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        build_warehouse(data_dir, args.rows)
        log(f"warehouse with {args.rows} contacts in {time.perf_counter() - started:.0f}s")
        from canonry.api.keys import create_key

        key, _ = create_key("acme", rate_limit=10_000_000)
        port = free_port()
        env = {**child_env(), "CANONRY_DATA_DIR": str(data_dir)}
        server = subprocess.Popen([sys.executable, "-m", "canonry.cli", "api", "serve", "--port", str(port),
                                   "--no-access-log"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        base, session = f"http://127.0.0.1:{port}", requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        try:
            for _ in range(150):
                try:
                    session.get(base + "/openapi.json", timeout=2).raise_for_status()
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            load_start = os.getloadavg()
            pages, ids, cursor = [], [], None
            walk_started = time.perf_counter()
            while True:
                params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                t0 = time.perf_counter()
                body = session.get(base + "/v1/crm/contacts", params=params, timeout=30).json()
                pages.append(time.perf_counter() - t0)
                ids += [r["contact_id"] for r in body["results"]]
                cursor = body["next"]
                if cursor is None:
                    break
            walk_seconds = time.perf_counter() - walk_started
            assert len(ids) == len(set(ids)) == args.rows, (len(ids), len(set(ids)))
            lookups, rng = [], random.Random(7)
            lookup_started = time.perf_counter()
            for record_id in rng.sample(ids, min(args.lookups, len(ids))):
                t0 = time.perf_counter()
                session.get(f"{base}/v1/crm/contacts/{record_id}", timeout=30).raise_for_status()
                lookups.append(time.perf_counter() - t0)
            lookup_seconds = time.perf_counter() - lookup_started
        finally:
            server.terminate()
            server.wait(10)
    report = {
        "rows": args.rows, "pages": len(pages), "rows_per_s": round(args.rows / walk_seconds),
        "page_p50_ms": round(1000 * statistics.median(pages), 1),
        "page_p99_ms": round(1000 * _percentile(pages, 0.99), 1),
        "lookups": len(lookups), "lookups_per_s": round(len(lookups) / lookup_seconds),
        "lookup_p50_ms": round(1000 * statistics.median(lookups), 1),
        "lookup_p99_ms": round(1000 * _percentile(lookups, 0.99), 1),
        "load_average": {"start": load_start, "end": os.getloadavg()}, "cores": os.cpu_count(),
        "command": " ".join(sys.argv),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"api-{stamp}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
