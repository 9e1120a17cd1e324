"""The plan of a sync: the model's rows against `ops.push_state` (the field values last confirmed per
record), field by field. Reads only; a dry run is exactly this plan.

Per record and mode (`update` | `upsert` | `insert` | `mirror`):
* never pushed, no CRM id          -> create (upsert/insert/mirror); `update`: skipped unless matched by a
                                      natural key (the CRM's own update by that key)
* never pushed, CRM id known       -> update with every mapped field (`insert`: skipped, it exists)
* pushed before                     -> update with only the fields whose value changed; none: unchanged
                                      (`insert`: never updated)
* pushed before, left the model     -> `mirror`: delete (on_delete archive | delete | clear); else untouched
Records parked after repeated rejections (`ops.push_quarantine`) are left out until released.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from canonry import ops
from canonry.errors import CanonryError, ErrorClass
from canonry.reverse_etl.coerce import DataError, coerce
from canonry.reverse_etl.syncs import Sync
from canonry.warehouse import connect
from canonry.writeback import comparable, json_value


class PlanError(CanonryError):
    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(ErrorClass.CONFIG_ERROR, message, hint=hint)


@dataclass
class Desired:
    record_key: str
    external_id: str | None          # the CRM id the write addresses (None: create / match by key)
    fields: dict[str, Any]           # the fields sent: all on a create, the changed ones on an update
    record_hash: str                 # hash of every mapped field's desired value (the record's version)
    idempotency_key: str
    all_fields: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)   # last confirmed values of the fields sent
    match: tuple[str, str] | None = None                   # (CRM field, value): natural-key match


@dataclass
class ConnectionPlan:
    connection_id: str
    inserts: list[Desired] = field(default_factory=list)
    updates: list[Desired] = field(default_factory=list)
    deletes: list[Desired] = field(default_factory=list)
    unchanged: int = 0
    skipped: int = 0                  # the mode leaves them alone (update: not in the CRM; insert: exists)
    parked: int = 0
    data_errors: list[dict] = field(default_factory=list)
    in_doubt: dict[str, str] = field(default_factory=dict)   # record_key -> idempotency key left in flight

    @property
    def changes(self) -> list[tuple[str, Desired]]:
        return ([("insert", d) for d in self.inserts] + [("update", d) for d in self.updates]
                + [("delete", d) for d in self.deletes])


@dataclass
class Plan:
    sync: Sync
    fields: list[str]
    connections: dict[str, ConnectionPlan]

    def counts(self) -> dict[str, int]:
        return {k: sum(len(getattr(p, k)) for p in self.connections.values())
                for k in ("inserts", "updates", "deletes")}

    def summary(self) -> dict[str, int]:
        out = self.counts()
        for k in ("unchanged", "skipped", "parked"):
            out[k] = sum(getattr(p, k) for p in self.connections.values())
        out["data_errors"] = sum(len(p.data_errors) for p in self.connections.values())
        return out


def record_hash(external_id: str | None, fields: dict) -> str:
    body = json.dumps({"external_id": external_id, "fields": {k: comparable(v) for k, v in fields.items()}},
                      sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def idempotency_key(model: str, connection_id: str, record_key: str, version: str) -> str:
    return hashlib.sha256(f"{model}|{connection_id}|{record_key}|{version}".encode()).hexdigest()[:24]


def _field_types(sync: Sync) -> dict[str, str]:
    from canonry.reverse_etl.syncs import _writer

    return _writer(sync.provider).FIELDS.get(sync.object, {})


def read_model(sync: Sync) -> tuple[list[str], list[dict], dict, dict, dict]:
    """The model's rows, the push state, the latest log entry and the quarantine of this sync."""
    conn = connect()
    try:
        ops.ensure_tables(conn)
        try:
            cursor = conn.execute(f'select * from reverse_etl."{sync.model}"')
        except Exception as exc:  # noqa: BLE001 - duckdb CatalogException: the model was never built
            raise PlanError(f"the table reverse_etl.{sync.model} does not exist ({type(exc).__name__})",
                            hint=f"build it first: `dbt build --select +{sync.model}` (canonry push does)") from None
        columns = [d[0] for d in cursor.description]
        missing = [c for c in ("record_key", "connection_id", *sync.spec.fields) if c not in columns]
        if missing:
            raise PlanError(f"{sync.model} lacks the column(s) {', '.join(missing)} (sync {sync.name})",
                            hint="a push model selects record_key, connection_id, external_id, then the "
                                 "columns the sync maps")
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        state = {(r[0], r[1]): {"external_id": r[2], "provider_id": r[3], "hash": r[4],
                                "values": json.loads(r[5]) if r[5] else None}
                 for r in conn.execute("select connection_id, record_key, external_id, provider_id, record_hash, "
                                       "field_values from ops.push_state where model = ?", [sync.name]).fetchall()}
        log = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            """select connection_id, record_key, idempotency_key, status from (
                   select *, row_number() over (partition by connection_id, record_key order by logged_at desc,
                          case status when 'in_flight' then 0 else 1 end desc) as n
                   from ops.push_log where model = ?) ranked where n = 1""", [sync.name]).fetchall()}
        parked = {(r[0], r[1]) for r in conn.execute(
            "select connection_id, record_key from ops.push_quarantine where model = ? and parked",
            [sync.name]).fetchall()}
    finally:
        conn.close()
    return columns, rows, state, log, {"parked": parked}


def _rows_per_natural_key(sync: Sync, rows: list[dict]) -> dict[tuple[str, str], list[str]]:
    """(connection, natural key value) -> record keys, only for values more than one row holds."""
    out: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        value = row.get(sync.spec.match.column)
        if value is not None and str(value).strip():
            out.setdefault((str(row["connection_id"]), str(value).strip().lower()), []).append(str(row["record_key"]))
    return {k: v for k, v in out.items() if len(v) > 1}


def plan_sync(sync: Sync, *, only_ids: set[str] | None = None) -> Plan:
    spec = sync.spec
    columns, rows, state, log, extra = read_model(sync)
    types = _field_types(sync)
    plans: dict[str, ConnectionPlan] = {}
    seen: dict[tuple[str, str], int] = {}
    sharing = _rows_per_natural_key(sync, rows) if spec.match.by == "natural_key" else {}
    for number, row in enumerate(rows, start=1):
        connection_id, key = str(row["connection_id"]), str(row["record_key"])
        if spec.destination.connection and connection_id != spec.destination.connection:
            continue
        if (connection_id, key) in seen:
            raise PlanError(f"{sync.model}: record_key {key!r} appears twice for {connection_id} (rows "
                            f"{seen[(connection_id, key)]} and {number}); nothing was written",
                            hint="make record_key unique in the model (a `unique` test catches it in the build)")
        seen[(connection_id, key)] = number
        model_external = row.get("external_id") if spec.match.by == "crm_id" else None
        model_external = None if model_external is None else str(model_external)
        if only_ids is not None and key not in only_ids and model_external not in only_ids:
            continue
        target = plans.setdefault(connection_id, ConnectionPlan(connection_id))
        match = None
        if spec.match.by == "natural_key":
            value = row.get(spec.match.column)
            if value is None or value == "":
                target.data_errors.append({"record_key": key, "field": spec.match.field, "value": None,
                                           "message": f"the match key {spec.match.column} is empty"})
                continue
            match = (spec.match.field, str(value).strip().lower())
            others = [k for k in sharing.get((connection_id, match[1]), []) if k != key]
            if others:   # one CRM record per key: which row wins is not ours to guess; the rest goes on
                target.data_errors.append({
                    "record_key": key, "field": spec.match.field, "value": match[1],
                    "message": f"{len(others) + 1} rows of {sync.model} have the {spec.match.field} {match[1]!r} "
                               f"(also {', '.join(others[:5])}): deduplicate the model"})
                continue
        if (connection_id, key) in extra["parked"]:
            target.parked += 1
            continue
        desired_fields, problem = {}, None
        for column, crm_field in spec.fields.items():
            try:
                desired_fields[crm_field] = coerce(types.get(crm_field), json_value(row[column]))
            except DataError as exc:
                problem = {"record_key": key, "field": crm_field, "value": str(row[column])[:80],
                           "message": f"{crm_field}: {exc}"}
                break
        if problem:
            target.data_errors.append(problem)
            continue
        previous = state.get((connection_id, key))
        known_id = model_external or (previous or {}).get("provider_id")
        version = record_hash(model_external, desired_fields)
        desired = Desired(key, known_id, dict(desired_fields), version,
                          idempotency_key(sync.name, connection_id, key, version), dict(desired_fields), {}, match)
        latest = log.get((connection_id, key))
        if latest and latest[1] in ("in_flight", "failed"):
            target.in_doubt[key] = latest[0]
        if previous is None:
            if spec.mode == "insert" and known_id:
                target.skipped += 1
            elif known_id:
                target.updates.append(desired)
            elif spec.mode == "update" and match is None:
                target.skipped += 1
            elif spec.mode == "update":
                target.updates.append(desired)
            else:
                target.inserts.append(desired)
            continue
        if spec.mode == "insert":
            target.unchanged += 1
            continue
        before = previous["values"]
        if before is None:   # pushed by a version that kept only the hash: resend all when it changed
            changed = {} if previous["hash"] == version else dict(desired_fields)
        else:
            changed = {k: v for k, v in desired_fields.items() if comparable(v) != comparable(before.get(k))}
        if not changed:
            target.unchanged += 1
            continue
        desired.fields = changed
        desired.before = {k: (before or {}).get(k) for k in changed}
        target.updates.append(desired)
    if spec.mode == "mirror":
        for (connection_id, key), previous in state.items():
            if (connection_id, key) in seen or (only_ids is not None and key not in only_ids):
                continue
            if spec.destination.connection and connection_id != spec.destination.connection:
                continue
            cleared = {crm_field: None for crm_field in spec.fields.values()}
            version = "deleted:" + record_hash(previous["provider_id"], cleared)
            plans.setdefault(connection_id, ConnectionPlan(connection_id)).deletes.append(Desired(
                key, previous["provider_id"], cleared if spec.on_delete == "clear" else {}, version,
                idempotency_key(sync.name, connection_id, key, version), cleared, previous["values"] or {}))
    return Plan(sync, list(spec.fields.values()), plans)
