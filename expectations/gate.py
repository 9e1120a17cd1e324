"""The validation gate: run the GE suites against the canonical tables and record the verdict.

GX's SQL datasource on DuckDB returns wrong results in 1.24 (stack-notes), so each table is read into a
DataFrame and validated with GX's pandas datasource in an ephemeral context. Results go to
`ops.validation_results`; the gate fails when any expectation of a validated table fails.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from canonry import ops
from canonry.warehouse import connect
from expectations.suites import SUITES, Expectation

logging.getLogger("great_expectations").setLevel(logging.ERROR)


@dataclass
class CheckResult:
    table: str
    expectation: str
    column: str | None
    success: bool
    observed: str
    unexpected_count: int = 0


@dataclass
class GateResult:
    run_id: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(c.success for c in self.checks)

    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success]

    def tables(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for check in self.checks:
            out[check.table] = out.get(check.table, True) and check.success
        return out


# One row per email of the live rows of a table ({table}), per warehouse dialect.
EMAILS_SQL = {
    "duckdb": "select json_extract_string(e, '$.value') as email from canonical.{table}, "
              "unnest(json_extract(emails, '$[*]')) as t(e) where not is_deleted",
    "postgres": "select e ->> 'value' as email from canonical.{table}, "
                "jsonb_array_elements(emails) as t(e) where not is_deleted",
}


# Facts about the whole table, not its rows: in a run-scoped gate (`load_ids`) they are SQL aggregates over the
# whole table (one `count(*)`, one `max`), while the row-level expectations read only the run's rows.
TABLE_LEVEL = {"ExpectTableRowCountToBeBetween": "count(*)", "ExpectColumnMaxToBeBetween": 'max("{column}")'}
_LOAD_ID = re.compile(r"[0-9][0-9.]*")


def _run_filter(load_ids: list[str] | None) -> str:
    """`and _load_id in (...)` for a run-scoped gate (dlt load ids are digits and dots, checked, inlined)."""
    if load_ids is None:
        return ""
    bad = [i for i in load_ids if not _LOAD_ID.fullmatch(i)]
    if bad:
        raise ValueError(f"not a dlt load id: {bad[0]!r}")
    return f" and _load_id in ({', '.join(repr(i) for i in load_ids) or 'null'})"


def _frames(conn, table: str, load_ids: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The frames a table's suite reads (with `load_ids`, only the rows built from those loads). Only the
    columns some expectation names are loaded: canonical tables carry JSON and text columns no expectation
    reads (a third of the memory and time at 100k rows)."""
    wanted = [s.column for s in SUITES[table] if s.frame == "table" and s.column]
    columns = ", ".join(dict.fromkeys(f'"{c}"' for c in wanted)) or "1 as row_marker"
    where = _run_filter(load_ids)
    frames = {"table": conn.execute(f"select {columns} from canonical.{table} where true{where}").df()}
    if any(s.frame == "emails" for s in SUITES[table]):
        sql = EMAILS_SQL[getattr(conn, "dialect", "duckdb")]
        frames["emails"] = conn.execute(sql.format(table=table) + where).df()
    return frames


def _aggregate_checks(conn, table: str, now: datetime) -> list[CheckResult]:
    """The table-level expectations of a run-scoped gate, computed in the warehouse."""
    specs = [s for s in SUITES[table] if s.kind in TABLE_LEVEL]
    if not specs:
        return []
    values = conn.execute(f"select {', '.join(TABLE_LEVEL[s.kind].format(column=s.column) for s in specs)} "
                          f"from canonical.{table}").fetchone()
    results = []
    for spec, value in zip(specs, values, strict=True):
        low, high = spec.kwargs.get("min_value"), spec.kwargs.get("max_value")
        if "freshness_hours" in spec.kwargs:
            low, high = now - timedelta(hours=spec.kwargs["freshness_hours"]), now + timedelta(hours=1)
            if value is not None and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
        success = value is not None and (low is None or value >= low) and (high is None or value <= high)
        results.append(CheckResult(table, spec.kind, spec.column, success, str(value)[:200]))
    return results


def _gx_expectation(gx, spec: Expectation, now: datetime):
    kwargs = dict(spec.kwargs)
    if "freshness_hours" in kwargs:
        hours = kwargs.pop("freshness_hours")
        kwargs["min_value"] = now - timedelta(hours=hours)
        kwargs["max_value"] = now + timedelta(hours=1)
    return getattr(gx.expectations, spec.kind)(**kwargs)


def validate_table(table: str, conn=None, context=None, load_ids: list[str] | None = None) -> list[CheckResult]:
    """Run one table's suite; returns one result per expectation. With `load_ids` (run-scoped): row-level
    expectations on the rows built from those loads, table-level ones as SQL aggregates over the table."""
    import great_expectations as gx

    own = conn is None
    conn = conn or connect()
    now = datetime.now(UTC)
    try:
        frames = _frames(conn, table, load_ids)
        results = _aggregate_checks(conn, table, now) if load_ids is not None else []
    finally:
        if own:
            conn.close()
    context = context or _context()
    for frame_name, frame in frames.items():
        specs = [s for s in SUITES[table] if s.frame == frame_name
                 and (load_ids is None or s.kind not in TABLE_LEVEL)]
        if not specs:
            continue
        if frame.empty and load_ids is not None:
            # No row of this run in the table: nothing for a row-level expectation to fail on.
            results += [CheckResult(table, s.kind, s.column, True, "no rows loaded in this run") for s in specs]
            continue
        source = context.data_sources.add_or_update_pandas(f"{table}__{frame_name}")
        asset = source.add_dataframe_asset(name=f"{table}__{frame_name}")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
        # One suite per frame, validated in one pass (GX computes shared metrics once).
        suite = gx.ExpectationSuite(name=f"canonical.{table}.{frame_name}",
                                    expectations=[_gx_expectation(gx, spec, now) for spec in specs])
        outcome = batch.validate(suite)
        for spec, result in zip(specs, outcome.results, strict=True):
            detail = result.result or {}
            observed = detail.get("observed_value", detail.get("partial_unexpected_list", ""))
            results.append(CheckResult(table, spec.kind, spec.column, bool(result.success), str(observed)[:200],
                                       int(detail.get("unexpected_count") or 0)))
    return results


def _context():
    """An ephemeral GX context with progress bars off (they would flood CLI and CI output)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets its data-context module's logger to INFO at import (it announces a temporary docs directory
    # on every context): a parent's level does not override a child's own, so quiet that one by name too.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


# DuckDB's buffer pool of the gate's connection (default 80% of RAM): `CANONRY_GATE_MEMORY_LIMIT`.
GATE_MEMORY_LIMIT = "256MB"


def bound_memory(conn) -> None:
    """Bound DuckDB's buffer pool for the gate's queries (its frames are pandas, outside the pool)."""
    if getattr(conn, "dialect", "duckdb") == "duckdb":
        conn.execute("set memory_limit = ?", [os.environ.get("CANONRY_GATE_MEMORY_LIMIT", GATE_MEMORY_LIMIT)])


def run_gate(tables: list[str] | None = None, load_ids: list[str] | None = None) -> GateResult:
    """Validate the given canonical tables (default: all) and record results in ops.validation_results.

    `load_ids` (the loads of this run, e.g. `SyncResult.load_ids`) scopes the row-level expectations to the
    rows built from them, table-level ones are SQL aggregates (expectations/README.md); None validates
    every row (`canonry sync --full-validation`)."""
    result = GateResult(run_id=uuid.uuid4().hex[:12])
    context = _context()
    conn = connect(purpose="validation gate")
    try:
        bound_memory(conn)
        for table in tables or list(SUITES):
            result.checks += validate_table(table, conn, context, load_ids)
        evaluated = datetime.now(UTC)
        ops.append("validation_results", [{
            "run_id": result.run_id, "suite": f"canonical.{c.table}", "table_name": c.table,
            "expectation": c.expectation, "column_name": c.column, "success": c.success,
            "observed": c.observed, "unexpected_count": c.unexpected_count, "evaluated_at": evaluated,
        } for c in result.checks], conn)
    finally:
        conn.close()
    return result


def tables_fed_by(providers: list[str]) -> list[str]:
    """Canonical tables some configured provider feeds (others would fail `row count > 0` by design)."""
    from canonry import providers as registry

    tables = registry.tables_fed_by(providers)
    return [t for t in SUITES if t in tables]


def tables_for_connections(connections) -> list[str]:
    """The canonical tables a set of connections promises to fill. A connection that syncs every object
    (no `objects:` list) promises every table its provider feeds; one limited to some objects promises
    only the tables whose intermediate model reads one of those objects' raw tables (dbt lineage, from
    the manifest of the last build), so a HubSpot connection limited to contacts is not failed for an
    empty `crm_notes`."""
    full = sorted({c.provider for c in connections if not c.objects})
    tables = set(tables_fed_by(full))
    limited: dict[str, set[str]] = {}
    for connection in connections:
        if connection.objects and connection.provider not in full:
            limited.setdefault(connection.provider, set()).update(connection.objects)
    if limited:
        fed = raw_objects_feeding()
        for provider, objects in limited.items():
            for table in tables_fed_by([provider]):
                sources = fed.get((provider, table))
                if sources is None or sources & objects:  # no lineage known: keep the promise
                    tables.add(table)
    return [t for t in SUITES if t in tables]


def raw_objects_feeding() -> dict[tuple[str, str], set[str]]:
    """{(provider, canonical table): raw tables (objects) upstream of int_<provider>__<table>}, from the
    manifest of the last dbt parse or build (empty without one). Also checks each provider's declared
    `ProviderObject.feeds` (tests/test_object_feeds.py)."""
    import json

    from canonry.warehouse import dbt_manifest_path as manifest_path

    path = manifest_path()
    if not path.exists():
        return {}
    nodes = json.loads(path.read_text())
    graph = {**nodes.get("nodes", {}), **nodes.get("sources", {})}
    out: dict[tuple[str, str], set[str]] = {}
    for unique_id, node in graph.items():
        name = node.get("name", "")
        if node.get("resource_type") != "model" or not name.startswith("int_") or "__" not in name:
            continue
        provider, table = name[len("int_"):].split("__", 1)
        seen, stack, raw = set(), [unique_id], set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            parent = graph.get(current, {})
            if parent.get("resource_type") == "source" and parent.get("source_name") == provider:
                raw.add(parent.get("name"))
            stack.extend(parent.get("depends_on", {}).get("nodes", []))
        out[(provider, table)] = raw
    return out

