"""Guard throughput over the labelled corpora: checks per second and microseconds per query.

    .venv/bin/python benchmarks/guard_bench.py [--rounds 20] [--corpus-dir tests/guard] [--clock cpu]

``--clock cpu`` times with this process's CPU time instead of the wall clock: on a shared, loaded machine
it compares two rule sets fairly (the wall clock there measures the neighbours).

Prints numbers only (no thresholds): the full check (parse, shape check, every rule, rewrite) for SOQL
and for warehouse SQL, split into all queries and "typical" ones (those the guard lets through), plus
the SOQL parse alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from canonry.guard.canonical_tables import canonical_tables  # noqa: E402
from canonry.guard.catalog import Catalog  # noqa: E402
from canonry.guard.rules_soql import SoqlPolicy, check_soql  # noqa: E402
from canonry.guard.rules_sql import SqlPolicy, check_sql  # noqa: E402
from canonry.guard.soql_dialect import SoqlSyntaxError, parse_soql  # noqa: E402


def load(directory: Path, name: str) -> list[dict]:
    return yaml.safe_load((directory / name).read_text(encoding="utf-8"))


def measure(label: str, calls: list[Callable[[], object]], rounds: int,
            clock: Callable[[], float] = time.perf_counter) -> None:
    for call in calls:  # warm-up (imports, dialect caches)
        call()
    per_call: list[float] = []
    started = clock()
    for _ in range(rounds):
        for call in calls:
            t0 = clock()
            call()
            per_call.append(clock() - t0)
    total = clock() - started
    n = len(per_call)
    us = sorted(x * 1e6 for x in per_call)
    print(
        f"{label:<34} {n:>6} checks  {n / total:>9,.0f} checks/s  mean {statistics.fmean(us):>7.1f} µs  "
        f"p50 {us[n // 2]:>7.1f} µs  p95 {us[int(n * 0.95)]:>7.1f} µs  max {us[-1]:>8.1f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over each corpus")
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "tests" / "guard",
                        help="directory holding corpus_soql.yml and corpus_sql.yml (e.g. an older copy, to "
                             "compare rule sets on the same queries)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall clock (default) or this process's CPU time")
    args = parser.parse_args()

    catalog, tables = Catalog.default(), canonical_tables()
    soql, sql = load(args.corpus_dir, "corpus_soql.yml"), load(args.corpus_dir, "corpus_sql.yml")

    def soql_call(case: dict) -> Callable[[], object]:
        policy = SoqlPolicy(**case.get("policy", {}))
        return lambda: check_soql(case["query"], catalog, policy)

    def sql_call(case: dict) -> Callable[[], object]:
        policy, dialect = SqlPolicy(**case.get("policy", {})), case.get("dialect", "duckdb")
        sizes = case.get("sizes")
        return lambda: check_sql(case["query"], dialect, tables, policy, sizes=sizes)

    def parse_only(query: str) -> Callable[[], object]:
        def call() -> object:
            try:
                return parse_soql(query)
            except SoqlSyntaxError as error:
                return error
        return call

    typical_soql = [c for c in soql if c["verdict"] != "reject"]
    typical_sql = [c for c in sql if c["verdict"] != "reject"]
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds, "
          f"{len(soql)} SOQL + {len(sql)} SQL labelled queries")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    measure("SOQL check, whole corpus", [soql_call(c) for c in soql], args.rounds, clock)
    measure("SOQL check, typical (passes)", [soql_call(c) for c in typical_soql], args.rounds, clock)
    measure("SOQL parse only, whole corpus", [parse_only(c["query"]) for c in soql], args.rounds, clock)
    measure("SQL check, whole corpus", [sql_call(c) for c in sql], args.rounds, clock)
    measure("SQL check, typical (passes)", [sql_call(c) for c in typical_sql], args.rounds, clock)


if __name__ == "__main__":
    main()
