"""Peak RSS of the dbt build and the GE gate with DuckDB's buffer pool bounded (the defaults) or not.

    python -m benchmarks.memory_bound [--scale 100000] [--unbounded 19GB]

One sandbox (own process, unthrottled); per mode a fresh data dir and a fresh worker process running
sync → dbt build of HubSpot's lineage → gate (`benchmarks.worker canonry`), `unbounded` first with
`CANONRY_DBT_MEMORY_LIMIT` and `CANONRY_GATE_MEMORY_LIMIT` set to DuckDB's default (80% of RAM), then
`bounded` with Canonry's defaults (dbt/profiles.yml, expectations/gate.py). Results:
`benchmarks/results/memory-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run import CORE_OBJECTS, ROOT, Sandbox, log, machine_facts, run_worker

KNOBS = ("CANONRY_DBT_MEMORY_LIMIT", "CANONRY_GATE_MEMORY_LIMIT")
FIGURES = ("sync_s", "transform_s", "validate_s", "sync_peak_rss_mb", "transform_peak_rss_mb",
           "validate_peak_rss_mb", "dbt_nodes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--unbounded", default="19GB", help="the 'before' limit: DuckDB's default, 80%% of RAM")
    args = parser.parse_args()
    report: dict = {"scale": args.scale, "machine": machine_facts(), "modes": {}}
    sandbox = Sandbox(args.scale)
    try:
        with tempfile.TemporaryDirectory(prefix="canonry-memory-") as tmp:
            for mode in ("unbounded", "bounded"):
                log(mode)
                for knob in KNOBS:
                    if mode == "unbounded":
                        os.environ[knob] = args.unbounded
                    else:
                        os.environ.pop(knob, None)
                result = run_worker("canonry", sandbox.base_url, Path(tmp) / mode, "--objects",
                                    ",".join(CORE_OBJECTS))
                report["modes"][mode] = {k: result.get(k) for k in FIGURES}
                log(json.dumps(report["modes"][mode]))
    finally:
        for knob in KNOBS:
            os.environ.pop(knob, None)
        sandbox.stop()
    out = ROOT / "benchmarks" / "results" / f"memory-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["modes"], indent=2))


if __name__ == "__main__":
    main()
