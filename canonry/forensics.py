"""Replay, trace and status: answers from the warehouse alone (raw layer + ops), never from a provider.

* `replay(connection)` rebuilds staging and canonical rows from the stored raw payloads (dbt over
  `raw_<slug>`, zero API calls) and reports, per canonical table, which of the connection's rows were
  added, removed or changed by the rebuild.
* `trace(provider, remote_id)` lists every stored version of a record (raw table, load, run, cursor,
  deletion flag, payload digest), the canonical rows it became, and the errors/quarantine entries
  that mention it.
* `connection_status()` is what `canonry status` prints: per connection its state, last successful
  sync, freshness, records, and the error classes of its last runs.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from canonry import ops
from canonry.errors import ConfigError
from canonry.warehouse import connect

STALE_AFTER = timedelta(hours=24)
RECENT_RUNS = 5


def _tables(conn, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = ? order by table_name",
        [schema]).fetchall()]


def _columns(conn, schema: str, table: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table]).fetchall()}


def raw_tables(conn, provider: str) -> list[str]:
    return [t for t in _tables(conn, f"raw_{provider}") if not t.startswith("_dlt")]


LINEAGE_COLUMNS = ("_load_id", "last_synced_at")


def _row_json(conn, kept: list[str] | None) -> str:
    """The JSON of row `t` (only the `kept` columns when given), in the warehouse's dialect."""
    if getattr(conn, "dialect", "duckdb") == "postgres":
        pairs = ", ".join(f"'{c}', {c}" for c in kept or [])
        return f"jsonb_build_object({pairs})" if kept else "to_jsonb(t)"
    return f"to_json(struct_pack({', '.join(kept)}))" if kept else "to_json(t)"


def canonical_snapshot(conn, connection_id: str, lineage: bool = True) -> dict[str, dict[str, str]]:
    """{canonical table: {remote_id: digest of the whole row}} for one connection; `lineage=False` leaves
    out the columns that say *when/which load* (`_load_id`, `last_synced_at`) and keeps the content."""
    snapshot: dict[str, dict[str, str]] = {}
    for table in _tables(conn, "canonical"):
        columns = _columns(conn, "canonical", table)
        if not {"connection_id", "remote_id"} <= columns:
            continue
        kept = sorted(columns - set(LINEAGE_COLUMNS)) if not lineage else None
        rows = conn.execute(f"select remote_id, md5(cast({_row_json(conn, kept)} as varchar)) "
                            f"from canonical.{table} t where connection_id = ?", [connection_id]).fetchall()
        if rows:
            snapshot[table] = dict(rows)
    return snapshot


@dataclass
class TableChange:
    table: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class ReplayReport:
    connection_id: str
    provider: str
    success: bool
    from_load_id: str | None
    raw_rows: int
    loads: int
    changes: list[TableChange]
    dbt_error: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c.any for c in self.changes)

    def as_dict(self) -> dict:
        return {"connection_id": self.connection_id, "provider": self.provider, "success": self.success,
                "from_load_id": self.from_load_id, "raw_rows": self.raw_rows, "loads": self.loads,
                "changed": self.changed, "dbt_error": self.dbt_error, "failures": self.failures,
                "tables": {c.table: {"added": len(c.added), "removed": len(c.removed), "changed": len(c.changed),
                                     "unchanged": c.unchanged, "sample_changed": c.changed[:10],
                                     "sample_added": c.added[:10], "sample_removed": c.removed[:10]}
                           for c in self.changes}}


def provider_of(conn, connection_id: str) -> str:
    ops.ensure_tables(conn)
    row = conn.execute("select provider from ops.connections where connection_id = ?", [connection_id]).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("select connection_id from ops.connections order by 1").fetchall()]
        raise ConfigError(f"no connection {connection_id!r} has ever been synced into this warehouse "
                          f"(known: {', '.join(known) or 'none'})")
    return row[0]


def replay(connection_id: str, from_load_id: str | None = None) -> ReplayReport:
    """Rebuild staging and canonical from the raw layer (dbt only: no source, no session, no API call).

    dbt models are pure functions of the raw rows, so the rebuild covers every load (with --full-refresh:
    the incremental models would otherwise recompute only records with new raw rows, and a replay is what
    follows a model fix); `from_load_id` narrows the change report to the records that loads from that one on brought in (what a replay
    after fixing a model "from load X" is about), and must name a load of this connection."""
    from canonry.transform import build

    conn = connect()
    try:
        provider = provider_of(conn, connection_id)
        tables = raw_tables(conn, provider)
        if not tables:
            raise ConfigError(f"raw_{provider} holds nothing for {connection_id}: nothing to replay from")
        union = " union all ".join(f"select remote_id, _dlt_load_id from raw_{provider}.{t} where connection_id = ?"
                                   for t in tables)
        params = [connection_id] * len(tables)
        raw_rows, loads = conn.execute(f"select count(*), count(distinct _dlt_load_id) from ({union}) as u",
                                       params).fetchone()
        scope: set[str] | None = None
        if from_load_id is not None:
            known = {r[0] for r in conn.execute(f"select distinct _dlt_load_id from ({union}) as u", params).fetchall()}
            if from_load_id not in known:
                raise ConfigError(f"load {from_load_id!r} brought no rows of {connection_id} "
                                  f"(its loads: {', '.join(sorted(known)[-5:])} …)")
            scope = {r[0] for r in conn.execute(f"select distinct remote_id from ({union}) as u where _dlt_load_id >= ?",
                                                [*params, from_load_id]).fetchall()}
        before = canonical_snapshot(conn, connection_id)
    finally:
        conn.close()

    started = datetime.now(UTC)
    result = build(full_refresh=True)
    conn = connect()
    try:
        after = canonical_snapshot(conn, connection_id)
        changes = []
        for table in sorted(set(before) | set(after)):
            old, new = before.get(table, {}), after.get(table, {})
            ids = set(old) | set(new)
            if scope is not None:
                ids &= scope
            change = TableChange(table)
            for remote_id in sorted(ids):
                if remote_id not in old:
                    change.added.append(remote_id)
                elif remote_id not in new:
                    change.removed.append(remote_id)
                elif old[remote_id] != new[remote_id]:
                    change.changed.append(remote_id)
                else:
                    change.unchanged += 1
            changes.append(change)
        report = ReplayReport(connection_id, provider, result.success, from_load_id, raw_rows, loads, changes,
                              result.error, [f"{n.resource_type} {n.name}: {n.status}" for n in result.failures()])
        ops.append("replays", [{
            "replay_id": uuid.uuid4().hex[:12], "connection_id": connection_id, "from_load_id": from_load_id,
            "started_at": started, "finished_at": datetime.now(UTC), "success": result.success,
            "changes": report.as_dict()["tables"],
        }], conn)
        return report
    finally:
        conn.close()


def trace(provider: str, remote_id: str, connection_id: str | None = None) -> dict:
    """Every stored version of one record, the load and run that brought it, its canonical rows, and
    the errors or quarantine entries about it."""
    conn = connect()
    try:
        tables = raw_tables(conn, provider)
        if not tables:
            raise ConfigError(f"no raw_{provider} tables in this warehouse: nothing to trace")
        has_loads = "_dlt_loads" in _tables(conn, f"raw_{provider}")
        runs: dict[str, str] = {}
        if "sync_runs" in _tables(conn, "ops"):
            for run_id, load_ids in conn.execute("select run_id, load_ids from ops.sync_runs").fetchall():
                for load_id in json.loads(load_ids or "[]"):
                    runs[load_id] = run_id
        where = "remote_id = ?" + (" and connection_id = ?" if connection_id else "")
        params = [remote_id] + ([connection_id] if connection_id else [])
        versions = []
        for table in tables:
            loads_join = (f"left join raw_{provider}._dlt_loads l on l.load_id = r._dlt_load_id" if has_loads else "")
            loaded_at = "l.inserted_at" if has_loads else "null"
            for row in conn.execute(f"""
                    select r.connection_id, r.remote_updated_at, r.is_deleted, r.extracted_at, r._dlt_load_id,
                           {loaded_at} as loaded_at, md5(r.payload), r.payload
                    from raw_{provider}.{table} r {loads_join}
                    where r.{where} order by r.remote_updated_at, r._dlt_load_id""", params).fetchall():
                versions.append({"raw_table": f"raw_{provider}.{table}", "connection_id": row[0],
                                 "remote_updated_at": row[1], "is_deleted": row[2], "extracted_at": row[3],
                                 "load_id": row[4], "loaded_at": row[5], "run_id": runs.get(row[4]),
                                 "payload_md5": row[6], "payload": json.loads(row[7])})
        versions.sort(key=lambda v: (str(v["remote_updated_at"]), v["load_id"]))
        canonical_rows = []
        for table in _tables(conn, "canonical"):
            if not {"provider", "remote_id"} <= _columns(conn, "canonical", table):
                continue
            cursor = conn.execute(f"select * from canonical.{table} where provider = ? and {where}",
                                  [provider, *params])
            names = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                canonical_rows.append({"table": f"canonical.{table}", **dict(zip(names, row, strict=True))})
        errors = []
        if "sync_errors" in _tables(conn, "ops"):
            cursor = conn.execute("""select run_id, connection_id, endpoint, status, error_class, message, occurred_at
                                     from ops.sync_errors where provider = ? and message like ? order by occurred_at""",
                                  [provider, f"%{remote_id}%"])
            names = [d[0] for d in cursor.description]
            errors = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        quarantine = []
        if "quarantine" in _tables(conn, "ops") and "remote_id" in _columns(conn, "ops", "quarantine"):
            cursor = conn.execute("select * from ops.quarantine where remote_id = ?", [remote_id])
            names = [d[0] for d in cursor.description]
            quarantine = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        return {"provider": provider, "remote_id": remote_id, "versions": versions, "canonical": canonical_rows,
                "errors": errors, "quarantine": quarantine}
    finally:
        conn.close()


def connection_status(now: datetime | None = None) -> list[dict]:
    """Per connection: state, last successful sync, freshness, records, error classes of the last runs."""
    now = now or datetime.now(UTC)
    conn = connect()
    try:
        ops.ensure_tables(conn)
        ops.mark_killed_runs(conn)  # a run whose process is gone shows as killed, not running
        connections = conn.execute("select connection_id, provider, tenant_id from ops.connections "
                                   "order by connection_id").fetchall()
        lifecycle = ops.connection_states(conn)
        out = []
        for connection_id, provider, tenant_id in connections:
            runs = conn.execute("""select status, finished_at, error_class, error_classes, stalled, connection_state,
                                          records, run_id
                                   from ops.sync_runs where connection_id = ? and status <> 'running'
                                   order by finished_at desc limit ?""",
                                [connection_id, RECENT_RUNS]).fetchall()
            last_success = conn.execute("""select max(finished_at) from ops.sync_runs
                                           where connection_id = ? and status = 'success'""",
                                        [connection_id]).fetchone()[0]
            records = {}
            for table in raw_tables(conn, provider):
                records[table] = conn.execute(f"select count(distinct remote_id) from raw_{provider}.{table} "
                                              "where connection_id = ?", [connection_id]).fetchone()[0]
            classes: list[str] = []
            for run in runs:
                for error_class in json.loads(run[3] or "[]"):
                    if error_class not in classes:
                        classes.append(error_class)
            freshness = (now - last_success).total_seconds() if last_success else None
            state = _state(runs, last_success, now, lifecycle.get(connection_id))
            out.append({
                "connection_id": connection_id, "provider": provider, "tenant_id": tenant_id, "state": state,
                "last_run": runs[0][1] if runs else None, "last_run_status": runs[0][0] if runs else None,
                "last_success": last_success, "freshness_s": round(freshness, 1) if freshness is not None else None,
                "stalled": bool(runs and runs[0][4]), "records": sum(records.values()),
                "records_by_object": records, "error_classes": classes,
                "last_error_class": runs[0][2] if runs else None,
            })
        return out
    finally:
        conn.close()


def _state(runs: list[tuple], last_success: datetime | None, now: datetime, lifecycle: dict | None = None) -> str:
    """healthy | degraded | needs_reauth | misconfigured | failing (| disconnected), from the last runs and
    the lifecycle state (`ops.connection_state`, also written by `canonry connect/disconnect`)."""
    if lifecycle and (not runs or lifecycle["updated_at"] >= runs[0][1]):
        if lifecycle["state"] in ("needs_reauth", "misconfigured", "disconnected"):
            return lifecycle["state"]
        if lifecycle["state"] == "active" and runs and runs[0][0] != "success" and \
                runs[0][2] in ("auth_expired", "permission_denied", "config_error"):
            return "degraded"  # re-authorised since the failure: the next run will tell
    if not runs:
        return "degraded"
    status, _, error_class, _, stalled, recorded, _, _ = runs[0]
    if stalled:
        return "failing"
    if status == "success":
        recent_failures = [r for r in runs[1:3] if r[0] != "success"]
        if recent_failures or (last_success and now - last_success > STALE_AFTER):
            return "degraded"
        return "healthy"
    if recorded in ("needs_reauth", "misconfigured"):
        return recorded
    consecutive = 0
    for run in runs:
        if run[0] == "success":
            break
        consecutive += 1
    if recorded == "failing" or consecutive >= 3 or last_success is None and consecutive >= 2:
        return "failing"
    return "degraded"
