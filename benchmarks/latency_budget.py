"""A full HubSpot sync under provider latency with the published rate budget: how much of the budget it uses.

    python -m benchmarks.latency_budget [--scale 3000] [--latency-ms 200] [--reps 1]

The sandbox runs in its own process **with its rate limits on** (HubSpot's 100 requests / 10 s, 429 beyond)
and `latency_ms` added to every answer; the sync runs in a fresh process with Canonry's client budget at the
published limit (`benchmarks.worker canonry --sync-only --budget published`), on a fresh data dir, twice per
repetition: objects read one after another (`CANONRY_CONCURRENT_READS=0`, the previous behaviour) and
concurrently (the default). Reported per mode: seconds, API calls (sandbox log) against the minimum, 429s,
requests/s and its share of the budget (10 requests/s); the ratio is taken within one repetition.
Results: `benchmarks/results/latency-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.run import CORE_OBJECTS, ROOT, Sandbox, log, machine_facts, minimum_full_calls, run_worker

BUDGET_PER_S = 100 / 10.0  # HubSpot's published burst limit


def one_mode(sandbox: Sandbox, work: Path, concurrent: bool, objects: list[str]) -> dict:
    sandbox.clear_log()
    os.environ["CANONRY_CONCURRENT_READS"] = "1" if concurrent else "0"
    try:
        result = run_worker("canonry", sandbox.base_url, work, "--objects", ",".join(objects), "--sync-only",
                            "--budget", "published")
    finally:
        os.environ.pop("CANONRY_CONCURRENT_READS", None)
    calls = sandbox.api_requests()
    ok = sum(1 for r in calls if r["status"] < 400)
    return {"concurrent": concurrent, "sync_s": result["sync_s"], "api_calls": len(calls),
            "429": sum(1 for r in calls if r["status"] == 429), "records": result["records"],
            "requests_per_s": round(len(calls) / result["sync_s"], 2),
            "share_of_budget": round(ok / result["sync_s"] / BUDGET_PER_S, 3),
            "steps_s": result.get("steps"), "peak_rss_mb": result.get("sync_peak_rss_mb")}


def run(scale: int, latency_ms: int, reps: int, objects: list[str]) -> dict:
    report: dict = {"scale": scale, "latency_ms": latency_ms, "objects": objects, "reps": [],
                    "machine": machine_facts()}
    for rep in range(reps):
        sandbox = Sandbox(scale, rate_limits=True)
        try:
            minimum = minimum_full_calls(sandbox.info(), {}, objects)
            requests.post(sandbox.base_url + "/_sandbox/faults", json={"latency_ms": latency_ms},
                          timeout=10).raise_for_status()
            with tempfile.TemporaryDirectory(prefix="canonry-latency-") as tmp:
                modes = {}
                for concurrent in (False, True):
                    label = "concurrent" if concurrent else "sequential"
                    log(f"rep {rep + 1}: {label}")
                    modes[label] = one_mode(sandbox, Path(tmp) / label, concurrent, objects)
                    modes[label]["calls_per_minimum"] = round(modes[label]["api_calls"] / minimum, 3)
        finally:
            sandbox.stop()
        modes["min_calls"] = minimum
        modes["speedup"] = round(modes["sequential"]["sync_s"] / modes["concurrent"]["sync_s"], 2)
        report["reps"].append(modes)
        log(json.dumps(modes))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=3000)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--objects", default=",".join(CORE_OBJECTS))
    args = parser.parse_args()
    report = run(args.scale, args.latency_ms, args.reps, args.objects.split(","))
    out = ROOT / "benchmarks" / "results" / f"latency-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["reps"], indent=2))
    log(f"wrote {out}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    log(f"{time.perf_counter() - started:.0f} s")
