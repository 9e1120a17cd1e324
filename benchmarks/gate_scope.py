"""The validation gate of an incremental run: every row (full) vs the rows of the run's loads plus SQL
aggregates (run-scoped, `run_gate(tables, load_ids=...)`; expectations/README.md).

    python -m benchmarks.gate_scope [--scale 100000]

A sandbox (own process, unthrottled); a full run (sync, dbt build of HubSpot's lineage, gate), 1% of every
CRM object changed, then the incremental run in a fresh worker process whose gate runs run-scoped first
(paying GE's import) and then over every row (`benchmarks.worker canonry --gate-scope both`).
Results: `benchmarks/results/gate-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run import CORE_OBJECTS, ROOT, Sandbox, log, machine_facts, mutate_one_percent, run_worker

FIGURES = ("sync_s", "transform_s", "validate_run_s", "validate_s", "validate_run_peak_rss_mb",
           "validate_peak_rss_mb", "gate_run_success", "gate_success")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000)
    args = parser.parse_args()
    objects = list(CORE_OBJECTS)
    report: dict = {"scale": args.scale, "machine": machine_facts()}
    sandbox = Sandbox(args.scale)
    try:
        with tempfile.TemporaryDirectory(prefix="canonry-gate-") as tmp:
            selection = ("--objects", ",".join(objects))
            log("full run")
            full = run_worker("canonry", sandbox.base_url, Path(tmp), *selection)
            report["full"] = {k: full.get(k) for k in ("sync_s", "transform_s", "validate_s")}
            report["changed"], report["deleted"] = mutate_one_percent(sandbox, args.scale, 1000, objects)
            time.sleep(1)  # past the changes' timestamps (the source's settle window)
            log("incremental run, gate run-scoped then full")
            incr = run_worker("canonry", sandbox.base_url, Path(tmp), *selection, "--gate-scope", "both")
            report["incremental"] = {k: incr.get(k) for k in FIGURES}
    finally:
        sandbox.stop()
    out = ROOT / "benchmarks" / "results" / f"gate-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
