"""Reverse-ETL push benchmark: N changed contacts pushed into each CRM sandbox (rate limits on), then a
second push after 1% of them changed.

    python -m benchmarks.push_bench [--size 10000] [--providers hubspot,salesforce,pipedrive]

Per CRM: records/s, API calls against the minimum (⌈changes / provider batch⌉; Pipedrive: one per record),
peak RSS of this process (the sandbox runs in-process: its memory is included). The push model is a table
written straight into the warehouse (external_id = the sandbox's record id, a score per record) and pushed by
a sync file; the gate is not part of what is measured (a passed verdict is handed to `push`).
Results: benchmarks/results/push-latest.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from pathlib import Path

import psutil
import requests

RESULTS = Path(__file__).resolve().parent / "results"
OBJECT = {"hubspot": ("contacts", "contacts", "canonry_lead_score"),
          "salesforce": ("Contact", "contacts", "Canonry_Lead_Score__c"),
          "pipedrive": ("persons", "persons", "c4a1e5c07e5c0e5c0e5c0e5c0e5c0e5c0e5c0e51")}


def _connection(slug: str, server, tmp: Path) -> dict:
    from canonry.sandbox import DEFAULT_TOKENS

    entry = {"id": f"{slug}-bench", "tenant": "bench", "provider": slug, "base_url": server.base_url,
             "write_back": {"enabled": True, "objects": [OBJECT[slug][1]]}}
    if slug == "salesforce":
        from canonry.sandbox.salesforce import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI
        from canonry.secrets import store_secret
        from tests.sources.test_salesforce import oauth_tokens

        tokens = oauth_tokens(server)
        store_secret("local:salesforce-bench", json.dumps({
            **tokens, "token_endpoint": server.base_url + "/services/oauth2/token", "client_id": DEFAULT_CLIENT_ID}))
        os.environ["BENCH_SF_SECRET"] = DEFAULT_CLIENT_SECRET
        entry["auth"] = {"kind": "oauth2", "secret": "local:salesforce-bench", "client_id": DEFAULT_CLIENT_ID,
                         "client_secret": "env:BENCH_SF_SECRET", "redirect_uri": DEFAULT_REDIRECT_URI}
    else:
        os.environ[f"BENCH_{slug.upper()}_TOKEN"] = DEFAULT_TOKENS[slug]
        entry["auth"] = {"kind": "api_key", "secret": f"env:BENCH_{slug.upper()}_TOKEN"}
    return entry


def bench_provider(slug: str, size: int, tmp: Path) -> dict:
    import yaml

    from canonry.reverse_etl import GateVerdict, push
    from canonry.sandbox import start_sandbox
    from canonry.validation import load_connections
    from canonry.warehouse import connect

    truth_object, object_name, score_field = OBJECT[slug]
    server = start_sandbox(slug, scale=size)
    try:
        config = tmp / f"{slug}.yml"
        config.write_text(yaml.safe_dump({"connections": [_connection(slug, server, tmp)]}))
        connections = load_connections(config)
        records = requests.get(f"{server.base_url}/_sandbox/truth/{truth_object}", timeout=300).json()["records"]
        ids = [str(r["id"]) for r in records if not r["deleted"]][:size]
        model = f"rev_bench__{slug}"
        rng = random.Random(7)
        conn = connect()
        try:
            conn.execute("create schema if not exists reverse_etl")
            conn.execute(f'create or replace table reverse_etl."{model}" (record_key varchar, connection_id '
                         f'varchar, external_id varchar, score integer)')
            conn.executemany(f'insert into reverse_etl."{model}" values (?, ?, ?, ?)',
                             [(i, f"{slug}-bench", i, rng.randint(1, 100)) for i in ids])
        finally:
            conn.close()
        (tmp / "syncs" / f"bench_{slug}.yml").write_text(yaml.safe_dump({
            "model": model, "destination": {"provider": slug, "object": object_name}, "mode": "update",
            "fields": {"score": score_field}}))
        verdict = GateVerdict(model, True, [], [], "bench")
        from importlib import import_module

        batch = import_module(f"sources.{slug}.actions").BATCH_SIZE if slug != "pipedrive" else 1
        out = {"provider": slug, "records": len(ids)}
        for label, changes in (("first", len(ids)), ("one_percent", max(1, len(ids) // 100))):
            if label == "one_percent":
                conn = connect()
                try:
                    conn.execute(f'update reverse_etl."{model}" set score = score + 1 where record_key in '
                                 f'(select record_key from reverse_etl."{model}" order by record_key limit {changes})')
                finally:
                    conn.close()
            started = time.perf_counter()
            result = push(f"bench_{slug}", verdict, connections=connections).connections[0]
            seconds = time.perf_counter() - started
            minimum = math.ceil(changes / batch)
            out[label] = {"changes": changes, "written": result.written, "seconds": round(seconds, 2),
                          "records_per_s": round(result.written / seconds, 1) if seconds else None,
                          "calls": result.calls, "minimum_calls": minimum,
                          "calls_over_minimum": round(result.calls / minimum, 2),
                          "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1)}
            print(f"{slug} {label}: {out[label]}", flush=True)
        return out
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--providers", default="hubspot,salesforce,pipedrive")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        (tmp / "syncs").mkdir()
        os.environ.update(CANONRY_DATA_DIR=str(tmp / "data"), CANONRY_SYNCS_DIR=str(tmp / "syncs"),
                          CANONRY_KEY_FILE=str(tmp / "keys" / "master.key"))
        os.environ.pop("CANONRY_WAREHOUSE", None)
        results = [bench_provider(slug, args.size, tmp) for slug in args.providers.split(",")]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "push-latest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
