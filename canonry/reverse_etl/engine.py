"""The diff and push engine (see the package docstring for the protocol)."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from canonry import ops
from canonry.config import Connection, ConnectionsFile
from canonry.errors import CanonryError, ErrorClass
from canonry.warehouse import connect
from canonry.writeback import WriteOutcome, WriteRecord, comparable, json_value

MODEL_NAME = re.compile(r"^rev_(?P<provider>[a-z0-9]+)__(?P<object>[a-z0-9_]+)$")
KEY_COLUMNS = ("record_key", "connection_id", "external_id")
DELETE_MODES = ("none", "clear")
IN_DOUBT = ("in_flight", "failed")


class PushRefused(CanonryError):
    """The push did not start: the gate failed, write-back is not allowed, or the model is not a push model."""

    def __init__(self, message: str, *, hint: str, connection_id: str | None = None,
                 error_class: ErrorClass = ErrorClass.CONFIG_ERROR) -> None:
        super().__init__(error_class, message, connection_id=connection_id, hint=hint)


# -- the model ----------------------------------------------------------------------------------------
@dataclass
class ModelInfo:
    name: str
    provider: str
    object: str
    deletes: str = "none"
    canonical_parents: list[str] = field(default_factory=list)   # canonical tables it reads (transitively)


def _manifest() -> dict:
    from canonry.transform import manifest_path, parse

    path = manifest_path()
    if not path.exists():
        result = parse()
        if not result.success:
            raise PushRefused(f"dbt parse failed: {result.error}", hint="fix the dbt project, then retry")
    return json.loads(path.read_text())


def model_info(model: str, manifest: dict | None = None) -> ModelInfo:
    match = MODEL_NAME.match(model)
    if not match:
        raise PushRefused(f"{model!r} is not a reverse-ETL model", hint="push models are named "
                          "rev_<provider>__<object> and live in dbt/models/reverse_etl/")
    manifest = manifest or _manifest()
    nodes = manifest.get("nodes", {})
    node = nodes.get(f"model.canonry.{model}")
    if node is None or "models/reverse_etl/" not in node.get("original_file_path", ""):
        raise PushRefused(f"no reverse-ETL model {model!r} in the dbt project",
                          hint="add dbt/models/reverse_etl/<model>.sql (and `canonry` reparses it)")
    meta = (node.get("config", {}).get("meta") or node.get("meta") or {}).get("reverse_etl", {})
    deletes = meta.get("deletes", "none")
    if deletes not in DELETE_MODES:
        raise PushRefused(f"{model}: meta.reverse_etl.deletes is {deletes!r}",
                          hint=f"use one of {', '.join(DELETE_MODES)}")
    parents: list[str] = []
    seen: set[str] = set()
    stack = list(node.get("depends_on", {}).get("nodes", []))
    while stack:
        unique_id = stack.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        parent = nodes.get(unique_id, {})
        if "models/marts/" in parent.get("original_file_path", ""):
            parents.append(parent["name"])
            continue   # the canonical contract is the boundary: what is behind it is its own gate's business
        stack += parent.get("depends_on", {}).get("nodes", [])
    return ModelInfo(model, match["provider"], match["object"], deletes, sorted(parents))


def build_selection(model: str) -> list[str]:
    """The model and its upstream, plus what the canonical parents' tests reference (a relationships test
    of crm_contacts needs crm_accounts built too), so every dbt test of those tables runs in this build."""
    from canonry.transform import parse

    try:
        manifest = _manifest()
        info = model_info(model, manifest)
    except PushRefused:
        parse()   # a model added since the last parse
        manifest = _manifest()
        info = model_info(model, manifest)
    parents = {f"model.canonry.{t}" for t in info.canonical_parents}
    extra: set[str] = set()
    for node in manifest.get("nodes", {}).values():
        depends = set(node.get("depends_on", {}).get("nodes", []))
        if node.get("resource_type") == "test" and depends & parents:
            extra |= {d.split(".")[-1] for d in depends - parents if d.startswith("model.")}
    return [f"+{model}", *(f"+{name}" for name in sorted(extra))]


# -- the gate -----------------------------------------------------------------------------------------
@dataclass
class GateVerdict:
    """The outcome of one build for one model: dbt (models + tests) and the GE suites of its canonical tables."""

    model: str
    passed: bool
    failed_checks: list[str] = field(default_factory=list)
    canonical_tables: list[str] = field(default_factory=list)
    build_id: str = ""
    source: str = "canonry"

    def describe(self) -> str:
        if self.passed:
            return (f"gate passed (build {self.build_id}: dbt tests and GE suites of "
                    f"{', '.join(self.canonical_tables) or 'no canonical table'})")
        return "gate failed: " + "; ".join(self.failed_checks)


def gate(model: str, *, providers: list[str] | None = None) -> GateVerdict:
    """Build the model and its upstream (`dbt build --select +model`, tests included), then run the GE suites
    of the canonical tables it reads (those some configured provider feeds). Writes nothing to providers."""
    return gates([model], providers=providers)[model]


def gates(models: list[str], *, providers: list[str] | None = None) -> dict[str, GateVerdict]:
    """`gate` for several models in one dbt build (each verdict names only its own model's failures)."""
    from canonry.transform import run_dbt
    from expectations.gate import run_gate, tables_fed_by

    selection: list[str] = []
    for model in models:
        selection += [s for s in build_selection(model) if s not in selection]
    # cautious: a test runs when all its parents are in the selection (the canonical parents' tests all are).
    result = run_dbt(["build", "--select", *selection, "--indirect-selection", "cautious"])
    manifest = _manifest()
    tests_of: dict[str, set[str]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") == "test":
            tests_of[node["name"]] = {d.split(".")[-1] for d in node.get("depends_on", {}).get("nodes", [])}
    built = {n.name: n for n in result.nodes}
    verdicts = {}
    ge_cache: dict[str, list] = {}
    for model in models:
        info = model_info(model, manifest)
        relevant = set(info.canonical_parents) | {model}
        failed = [f"dbt {n.resource_type} {n.name}: {n.status}" + (f" ({n.message})" if n.message else "")
                  for n in result.failures()
                  if n.name in relevant or tests_of.get(n.name, set()) & relevant]
        node = built.get(model)
        if (node is None or node.status not in ("success", "pass")) and not failed:
            failed.append(f"dbt model {model} was not built ({node.status if node else 'not run'})"
                          + (f": {result.error}" if result.error else ""))
        fed = tables_fed_by(providers or [info.provider])
        tables = [t for t in info.canonical_parents if t in fed]
        run_id = ""
        if not failed:
            missing = [t for t in tables if t not in ge_cache]
            if missing:
                outcome = run_gate(missing)
                for table in missing:
                    ge_cache[table] = [c for c in outcome.checks if c.table == table]
                run_id = outcome.run_id
            failed += [f"GE canonical.{c.table}: {c.expectation}({c.column or ''}) failed, observed {c.observed}"
                       for t in tables for c in ge_cache[t] if not c.success]
        verdicts[model] = GateVerdict(model, not failed, failed, tables, run_id or uuid.uuid4().hex[:12])
    return verdicts


# -- the plan -----------------------------------------------------------------------------------------
@dataclass
class Desired:
    record_key: str
    external_id: str | None
    fields: dict[str, Any]
    record_hash: str
    idempotency_key: str


@dataclass
class ConnectionPlan:
    connection_id: str
    inserts: list[Desired] = field(default_factory=list)
    updates: list[Desired] = field(default_factory=list)
    deletes: list[Desired] = field(default_factory=list)
    unchanged: int = 0
    in_doubt: dict[str, str] = field(default_factory=dict)   # record_key -> idempotency key left in flight

    @property
    def changes(self) -> list[tuple[str, Desired]]:
        return ([("insert", d) for d in self.inserts] + [("update", d) for d in self.updates]
                + [("delete", d) for d in self.deletes])


@dataclass
class Plan:
    model: ModelInfo
    fields: list[str]
    connections: dict[str, ConnectionPlan]

    def counts(self) -> dict[str, int]:
        return {k: sum(len(getattr(p, k)) for p in self.connections.values())
                for k in ("inserts", "updates", "deletes")}


def record_hash(external_id: str | None, fields: dict) -> str:
    body = json.dumps({"external_id": external_id, "fields": {k: comparable(v) for k, v in fields.items()}},
                      sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def idempotency_key(model: str, connection_id: str, record_key: str, version: str) -> str:
    return hashlib.sha256(f"{model}|{connection_id}|{record_key}|{version}".encode()).hexdigest()[:24]


def plan(model: str, info: ModelInfo | None = None) -> Plan:
    """Diff the model against ops.push_state; reads only (a dry run is exactly this)."""
    info = info or model_info(model)
    conn = connect(purpose=f"push of {model} (plan)")
    try:
        ops.ensure_tables(conn)
        try:
            cursor = conn.execute(f'select * from reverse_etl."{model}"')
        except Exception as exc:  # noqa: BLE001 - duckdb CatalogException: the model was never built
            raise PushRefused(f"the table reverse_etl.{model} does not exist ({type(exc).__name__})",
                              hint=f"build it first: `dbt build --select +{model}` (canonry push does)") from None
        columns = [d[0] for d in cursor.description]
        missing = [c for c in ("record_key", "connection_id") if c not in columns]
        if missing:
            raise PushRefused(f"{model} lacks the column(s) {', '.join(missing)}",
                              hint="a push model selects record_key, connection_id, external_id, then fields")
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        state_rows = conn.execute(
            "select connection_id, record_key, external_id, record_hash from ops.push_state where model = ?",
            [model]).fetchall()
        log_rows = conn.execute(
            """select connection_id, record_key, idempotency_key, status from (
                   select *, row_number() over (partition by connection_id, record_key order by logged_at desc,
                          case status when 'in_flight' then 0 else 1 end desc) as n
                   from ops.push_log where model = ?) where n = 1""", [model]).fetchall()
    finally:
        conn.close()
    field_names = [c for c in columns if c not in KEY_COLUMNS]
    state = {(r[0], r[1]): (r[2], r[3]) for r in state_rows}
    plans: dict[str, ConnectionPlan] = {}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        connection_id, key = str(row["connection_id"]), str(row["record_key"])
        external = row.get("external_id")
        external = None if external is None else str(external)
        fields = {name: json_value(row[name]) for name in field_names}
        version = record_hash(external, fields)
        desired = Desired(key, external, fields, version, idempotency_key(model, connection_id, key, version))
        target = plans.setdefault(connection_id, ConnectionPlan(connection_id))
        seen.add((connection_id, key))
        previous = state.get((connection_id, key))
        if previous is None:
            target.inserts.append(desired)
        elif previous[1] != version:
            target.updates.append(desired)
        else:
            target.unchanged += 1
    if info.deletes == "clear":
        for (connection_id, key), (external, _) in state.items():
            if (connection_id, key) in seen:
                continue
            cleared = {name: None for name in field_names}
            version = "deleted:" + record_hash(external, cleared)
            plans.setdefault(connection_id, ConnectionPlan(connection_id)).deletes.append(
                Desired(key, external, cleared, version, idempotency_key(model, connection_id, key, version)))
    for connection_id, key, idem, status in log_rows:
        if status in IN_DOUBT and connection_id in plans:
            plans[connection_id].in_doubt[key] = idem
    return Plan(info, field_names, plans)


# -- the push -----------------------------------------------------------------------------------------
@dataclass
class ConnectionResult:
    connection_id: str
    provider: str
    status: str = "success"            # success | partial (some records rejected) | failed | dry_run
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    written: int = 0
    rejected: int = 0
    verified: int = 0                  # in-doubt records found already written (not sent again)
    calls: int = 0
    rejections: list[dict] = field(default_factory=list)
    error: CanonryError | None = None
    run_id: str = ""


@dataclass
class PushResult:
    model: str
    dry_run: bool
    verdict: GateVerdict | None
    connections: list[ConnectionResult] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(c.status in ("success", "dry_run") for c in self.connections)


def _writer_module(provider: str):
    try:
        return importlib.import_module(f"sources.{provider}.actions")
    except ModuleNotFoundError:
        raise PushRefused(f"{provider} has no writer (sources/{provider}/actions.py)",
                          hint="reverse ETL supports hubspot, salesforce and pipedrive") from None


def check_write_back(connection: Connection, info: ModelInfo) -> None:
    """Refuse unless the connection allows writing this object (write_back enabled, object listed, scopes)."""
    from canonry.validation import _validate_connections

    hint_file = "enable it in the connections file: write_back: {enabled: true, objects: [" + info.object + "]}"
    if connection.provider != info.provider:
        raise PushRefused(f"{info.name} writes to {info.provider}, but connection {connection.id} is "
                          f"{connection.provider}", hint="the model's connection_id column names the wrong "
                          "connection", connection_id=connection.id)
    if not connection.write_back.enabled:
        raise PushRefused(f"write-back is not enabled on connection {connection.id}", hint=hint_file,
                          connection_id=connection.id)
    if info.object not in connection.write_back.objects:
        raise PushRefused(f"connection {connection.id} does not allow writing {info.object!r} "
                          f"(write_back.objects: {', '.join(connection.write_back.objects) or 'none'})",
                          hint=hint_file, connection_id=connection.id)
    problems = [p for p in _validate_connections([(0, connection)], "connections file", {}, True)
                if p.code in ("write_not_supported", "write_scope_missing")]
    if problems:
        raise PushRefused("; ".join(p.message for p in problems), hint=problems[0].hint,
                          connection_id=connection.id, error_class=ErrorClass.PERMISSION_DENIED)


def _log_rows(run_id: str, model: str, connection: Connection, batch: int, status: str,
              items: list[tuple[str, Desired]], outcomes: dict[str, WriteOutcome] | None = None,
              message: str | None = None) -> list[dict]:
    now = datetime.now(UTC)
    rows = []
    for operation, desired in items:
        outcome = (outcomes or {}).get(desired.record_key)
        rows.append({"run_id": run_id, "model": model, "connection_id": connection.id,
                     "provider": connection.provider, "record_key": desired.record_key,
                     "idempotency_key": desired.idempotency_key, "operation": operation, "status": status,
                     "provider_id": outcome.provider_id if outcome else desired.external_id, "batch": batch,
                     "message": (outcome.message if outcome else None) or message, "logged_at": now})
    return rows


def _save_state(conn, run_id: str, model: str, connection: Connection, settled: list[tuple[str, Desired, str | None]]):
    now = datetime.now(UTC)
    for operation, desired, provider_id in settled:
        if operation == "delete":
            conn.execute("delete from ops.push_state where model = ? and connection_id = ? and record_key = ?",
                         [model, connection.id, desired.record_key])
            continue
        conn.execute("insert or replace into ops.push_state values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [model, connection.id, desired.record_key, desired.external_id,
                      provider_id or desired.external_id, desired.record_hash, desired.idempotency_key, now, run_id])


def _commit(run_id: str, model: str, connection: Connection, log: list[dict],
            settled: list[tuple[str, Desired, str | None]]) -> None:
    """One transaction: the log rows and the state of the records settled."""
    conn = connect(purpose=f"push of {model} (commit)")
    try:
        ops.ensure_tables(conn)
        conn.execute("begin")
        ops.append("push_log", log, conn)
        _save_state(conn, run_id, model, connection, settled)
        conn.execute("commit")
    finally:
        conn.close()


def push(model: str, verdict: GateVerdict | None, *, connections: ConnectionsFile, dry_run: bool = False,
         batch_size: int | None = None, progress: Callable[[str], None] | None = None,
         sample_size: int = 5, only: str | None = None) -> PushResult:
    """Push the model's changes to every connection it names (`only`: to that connection alone, as a
    Dagster partition does). Refuses (PushRefused) unless `verdict` is a passed gate of this model, and
    unless each connection allows writing the object."""
    say = progress or (lambda _m: None)
    info = model_info(model)
    if not dry_run:
        if verdict is None or verdict.model != model:
            raise PushRefused(f"no validation gate ran for {model} in this build",
                              hint=f"run `canonry push {model}` (it builds, validates, then pushes)")
        if not verdict.passed:
            raise PushRefused(f"{model} not pushed: {verdict.describe()}",
                              hint="fix the failing checks (see ops.validation_results and the dbt output); "
                                   "nothing was written", error_class=ErrorClass.DATA_ERROR)
    the_plan = plan(model, info)
    if only is not None:
        the_plan.connections = {k: v for k, v in the_plan.connections.items() if k == only}
    module = _writer_module(info.provider)
    result = PushResult(model, dry_run, verdict)
    for connection_id in the_plan.connections:
        connection = connections.get(connection_id)
        check_write_back(connection, info)
    for connection_id, cplan in the_plan.connections.items():
        connection = connections.get(connection_id)
        outcome = ConnectionResult(connection_id, info.provider, inserts=len(cplan.inserts),
                                   updates=len(cplan.updates), deletes=len(cplan.deletes))
        result.connections.append(outcome)
        for operation, desired in cplan.changes[:sample_size]:
            result.sample.append({"connection_id": connection_id, "operation": operation,
                                  "record_key": desired.record_key, "external_id": desired.external_id,
                                  **desired.fields})
        if dry_run:
            outcome.status = "dry_run"
            continue
        _push_connection(model, info, connection, cplan, module, outcome, batch_size, say)
    return result


def _push_connection(model: str, info: ModelInfo, connection: Connection, cplan: ConnectionPlan, module,
                     outcome: ConnectionResult, batch_size: int | None, say: Callable[[str], None]) -> None:
    from canonry.pipeline import build_runtime

    run_id = uuid.uuid4().hex[:12]
    outcome.run_id = run_id
    started_at = datetime.now(UTC)
    ops.upsert_connection(connection.id, connection.tenant, connection.provider)
    runtime = build_runtime(connection)
    writer = module.writer(runtime, info.object)
    limit = module.BATCH_SIZE if not batch_size else min(batch_size, module.BATCH_SIZE)
    changes = cplan.changes
    try:
        # Settle records a crashed run left in flight: read them back; the version already there is not resent.
        doubtful = [(op, d) for op, d in changes
                    if cplan.in_doubt.get(d.record_key) == d.idempotency_key and d.external_id]
        if doubtful:
            say(f"{connection.id}: {len(doubtful)} record(s) in doubt after an interrupted run: reading them back")
            settled = []
            for start in range(0, len(doubtful), limit):
                chunk = doubtful[start:start + limit]
                current = writer.read([_write_record(op, d) for op, d in chunk])
                for op, desired in chunk:
                    values = current.get(desired.record_key)
                    if values is not None and all(comparable(values.get(k)) == comparable(v)
                                                  for k, v in desired.fields.items()):
                        settled.append((op, desired))
            if settled:
                _commit(run_id, model, connection, _log_rows(run_id, model, connection, 0, "verified", settled,
                                                             message="already at the provider (in doubt "
                                                                     "after an interrupted run)"),
                        [(op, d, d.external_id) for op, d in settled])
                outcome.verified = len(settled)
                done = {d.record_key for _, d in settled}
                changes = [(op, d) for op, d in changes if d.record_key not in done]
        batches = [changes[i:i + limit] for i in range(0, len(changes), limit)]
        for number, batch in enumerate(batches, start=1):
            _commit(run_id, model, connection, _log_rows(run_id, model, connection, number, "in_flight", batch), [])
            try:
                results = writer.write([_write_record(op, d) for op, d in batch])
            except CanonryError as exc:
                _commit(run_id, model, connection, _log_rows(run_id, model, connection, number, "failed", batch,
                                                             message=str(exc)), [])
                raise
            by_key = {r.record_key: r for r in results}
            ok = [(op, d) for op, d in batch if by_key.get(d.record_key) and by_key[d.record_key].ok]
            bad = [(op, d) for op, d in batch if not (by_key.get(d.record_key) and by_key[d.record_key].ok)]
            for _, desired in bad:
                by_key.setdefault(desired.record_key, WriteOutcome(desired.record_key, False,
                                                                   message="the provider returned no result"))
            _commit(run_id, model, connection,
                    _log_rows(run_id, model, connection, number, "written", ok, by_key)
                    + _log_rows(run_id, model, connection, number, "rejected", bad, by_key),
                    [(op, d, by_key[d.record_key].provider_id) for op, d in ok])
            outcome.written += len(ok)
            outcome.rejected += len(bad)
            outcome.rejections += [{"record_key": d.record_key, "external_id": d.external_id,
                                    "message": by_key[d.record_key].message} for _, d in bad]
            say(f"{connection.id}: batch {number}/{len(batches)}: {len(ok)} written, {len(bad)} rejected")
        outcome.status = "partial" if outcome.rejected else "success"
    except CanonryError as exc:
        outcome.status, outcome.error = "failed", exc
        say(f"{connection.id}: stopped: {exc}")
    finally:
        outcome.calls = runtime.telemetry.calls
        _record_run(outcome, model, connection, started_at)


def _write_record(operation: str, desired: Desired) -> WriteRecord:
    return WriteRecord(desired.record_key, desired.external_id, dict(desired.fields), desired.idempotency_key,
                       operation)


def _record_run(outcome: ConnectionResult, model: str, connection: Connection, started_at: datetime) -> None:
    error = outcome.error
    ops.append("push_runs", [{
        "run_id": outcome.run_id, "model": model, "connection_id": connection.id, "provider": connection.provider,
        "started_at": started_at, "finished_at": datetime.now(UTC), "status": outcome.status,
        "inserts": outcome.inserts, "updates": outcome.updates, "deletes": outcome.deletes,
        "written": outcome.written, "rejected": outcome.rejected, "verified": outcome.verified,
        "calls": outcome.calls, "error_class": error.error_class.value if error else None,
        "error_message": str(error) if error else None}])
