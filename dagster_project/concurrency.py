"""How steps that open the warehouse are serialised by Dagster itself.

DuckDB allows one writing process per file, and the default (multiprocess) executor runs independent steps
in parallel processes. Every step that opens the warehouse therefore carries

- the pool `canonry_warehouse` (instance-wide, across runs: `canonry ui` writes a dagster.yaml whose
  `concurrency.pools.default_limit` is 1; see dagster_project/instance.py), and
- the op tag `canonry/warehouse: duckdb`, limited to one at a time by this project's default executor
  (`EXECUTOR`): within one run the limit holds whatever the instance's configuration says.

With a PostgreSQL warehouse (`CANONRY_WAREHOUSE=postgresql://…`) neither applies and the steps run in
parallel. A second line of defence, the warehouse's own file lock, lives in canonry/warehouse.py.
"""

from __future__ import annotations

from dagster import multiprocess_executor

from canonry.warehouse import postgres_url

WAREHOUSE_POOL = "canonry_warehouse"
WAREHOUSE_TAG = "canonry/warehouse"


def serialised() -> bool:
    """True when the warehouse is a DuckDB file (one writer at a time)."""
    return postgres_url() is None


def warehouse_pool() -> str | None:
    return WAREHOUSE_POOL if serialised() else None


def warehouse_op_tags() -> dict[str, str]:
    return {WAREHOUSE_TAG: "duckdb"} if serialised() else {}


def executor():
    """The multiprocess executor (Dagster's default) with the warehouse limit. Steps start from a forkserver
    that has imported the code location once (a spawned step would import dagster, dbt and GE again: ~8 s
    of CPU each)."""
    limits = [{"key": WAREHOUSE_TAG, "value": "duckdb", "limit": 1}] if serialised() else []
    return multiprocess_executor.configured({
        "tag_concurrency_limits": limits,
        "start_method": {"forkserver": {"preload_modules": ["dagster_project.definitions"]}},
    }, name="canonry_multiprocess")
