"""The push of a plan (see the package docstring for the protocol): batches, the push log, the state of
each record's confirmed field values, in-doubt settlement, rejected-row retry and parking."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from canonry import ops, providers, tracing
from canonry.config import Connection, ConnectionsFile
from canonry.errors import CanonryError, ErrorClass
from canonry.governance import audit
from canonry.reverse_etl.engine import GateVerdict, PushRefused, plan
from canonry.reverse_etl.matching import needs_lookup, resolve
from canonry.reverse_etl.planner import ConnectionPlan, Desired
from canonry.reverse_etl.syncs import Sync
from canonry.warehouse import connect
from canonry.writeback import WriteOutcome, WriteRecord, comparable


@dataclass
class ConnectionResult:
    connection_id: str
    provider: str
    status: str = "success"            # success | partial (some records rejected) | failed | dry_run | shadow
    #                                    | paused (canonry pause: nothing planned is written)
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    unchanged: int = 0
    skipped: int = 0
    parked: int = 0
    written: int = 0
    rejected: int = 0
    verified: int = 0                  # in-doubt records found already written (not sent again)
    newly_parked: int = 0
    calls: int = 0
    held_back: int = 0                 # changes left for the next run by --limit
    rejections: list[dict] = field(default_factory=list)
    data_errors: list[dict] = field(default_factory=list)
    error: CanonryError | None = None
    run_id: str = ""

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("connection_id", "provider", "status", "inserts", "updates",
                                             "deletes", "unchanged", "skipped", "parked", "written", "rejected",
                                             "verified", "newly_parked", "calls", "held_back", "rejections",
                                             "data_errors", "run_id")}
        out["error"] = str(self.error) if self.error else None
        return out


@dataclass
class PushResult:
    model: str
    dry_run: bool
    verdict: GateVerdict | None
    connections: list[ConnectionResult] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)
    sync: str = ""

    @property
    def success(self) -> bool:
        return all(c.status in ("success", "dry_run", "shadow", "paused") for c in self.connections)

    def as_dict(self) -> dict:
        return {"sync": self.sync, "model": self.model, "dry_run": self.dry_run,
                "connections": [c.as_dict() for c in self.connections], "sample": self.sample}


def _writer_module(provider: str):
    if not providers.is_provider(provider) or not providers.spec(provider).write_back:
        writers = [p for p in providers.slugs() if providers.spec(p).write_back]
        raise PushRefused(f"{provider} has no writer (sources/{provider}/actions.py)",
                          hint=f"reverse ETL supports {', '.join(writers)}")
    return providers.source_module(provider, "actions")


def check_write_back(connection: Connection, sync: Sync) -> None:
    """Refuse unless the connection allows writing this object (write_back enabled, object listed, scopes)."""
    from canonry.validation import _validate_connections

    hint_file = "enable it in the connections file: write_back: {enabled: true, objects: [" + sync.object + "]}"
    if connection.provider != sync.provider:
        raise PushRefused(f"{sync.name} writes to {sync.provider}, but connection {connection.id} is "
                          f"{connection.provider}", hint="the model's connection_id column names the wrong "
                          "connection", connection_id=connection.id)
    if not connection.write_back.enabled:
        raise PushRefused(f"write-back is not enabled on connection {connection.id}", hint=hint_file,
                          connection_id=connection.id)
    if sync.object not in connection.write_back.objects:
        raise PushRefused(f"connection {connection.id} does not allow writing {sync.object!r} "
                          f"(write_back.objects: {', '.join(connection.write_back.objects) or 'none'})",
                          hint=hint_file, connection_id=connection.id)
    problems = [p for p in _validate_connections([(0, connection)], "connections file", {}, True)
                if p.code in ("write_not_supported", "write_scope_missing")]
    if problems:
        raise PushRefused("; ".join(p.message for p in problems), hint=problems[0].hint,
                          connection_id=connection.id, error_class=ErrorClass.PERMISSION_DENIED)


def _log_rows(run_id: str, sync: Sync, connection: Connection, batch: int, status: str,
              items: list[tuple[str, Desired]], outcomes: dict[str, WriteOutcome] | None = None,
              message: str | None = None, error_class: str | None = None) -> list[dict]:
    now = datetime.now(UTC)
    rows = []
    for operation, desired in items:
        outcome = (outcomes or {}).get(desired.record_key)
        rows.append({"run_id": run_id, "model": sync.name, "connection_id": connection.id,
                     "provider": connection.provider, "record_key": desired.record_key,
                     "idempotency_key": desired.idempotency_key, "operation": operation, "status": status,
                     "provider_id": outcome.provider_id if outcome else desired.external_id, "batch": batch,
                     "message": (outcome.message if outcome else None) or message, "logged_at": now,
                     "error_class": error_class})
    return rows


def _save_state(conn, run_id: str, sync: Sync, connection: Connection,
                settled: list[tuple[str, Desired, str | None]]) -> None:
    """The confirmed state of the settled records, in three set-based statements (not one per record)."""
    if not settled:
        return
    import pyarrow as pa

    now = datetime.now(UTC)
    table = pa.table({
        "record_key": [d.record_key for _, d, _ in settled],
        "operation": [op for op, _, _ in settled],
        "external_id": [d.external_id for _, d, _ in settled],
        "provider_id": [pid or d.external_id for _, d, pid in settled],
        "record_hash": [d.record_hash for _, d, _ in settled],
        "idempotency_key": [d.idempotency_key for _, d, _ in settled],
        "field_values": [json.dumps({k: comparable(v) for k, v in d.all_fields.items()}) for _, d, _ in settled],
    })
    conn.register("settled_records", table)
    try:
        where = [sync.name, connection.id]
        for target in ("push_quarantine", "push_state"):
            conn.execute(f"delete from ops.{target} where model = ? and connection_id = ? and record_key in "
                         "(select record_key from settled_records)", where)
        conn.execute("insert into ops.push_state (model, connection_id, record_key, external_id, provider_id, "
                     "record_hash, idempotency_key, pushed_at, run_id, field_values) "
                     "select ?, ?, record_key, external_id, provider_id, record_hash, idempotency_key, ?, ?, "
                     "cast(field_values as json) from settled_records where operation != 'delete'",
                     [*where, now, run_id])
    finally:
        conn.unregister("settled_records")


def _count_rejections(conn, sync: Sync, connection: Connection, rejected: list[tuple[Desired, str]]) -> int:
    """One more failure per rejected record; at `max_attempts` it is parked. Returns how many got parked."""
    parked = 0
    now = datetime.now(UTC)
    for desired, message in rejected:
        where = [sync.name, connection.id, desired.record_key]
        row = conn.execute("select failures from ops.push_quarantine where model = ? and connection_id = ? "
                           "and record_key = ?", where).fetchone()
        failures = (row[0] if row else 0) + 1
        park = failures >= sync.spec.max_attempts
        parked += park
        conn.execute("insert or replace into ops.push_quarantine values (?, ?, ?, ?, ?, ?, ?)",
                     [*where, failures, park, (message or "")[:500], now])
    return parked


def _commit(run_id: str, sync: Sync, connection: Connection, log: list[dict],
            settled: list[tuple[str, Desired, str | None]], rejected: list[tuple[Desired, str]] | None = None) -> int:
    """One transaction: the log rows, the state of the records settled, the count of the rejected."""
    conn = connect()
    try:
        conn.execute("begin")   # ops tables: ensured once by push()
        _append_log(conn, log)
        _save_state(conn, run_id, sync, connection, settled)
        parked = _count_rejections(conn, sync, connection, rejected or [])
        conn.execute("commit")
    finally:
        conn.close()
    return parked


def _append_log(conn, rows: list[dict]) -> None:
    """The log rows of a batch in one set-based insert (messages pass the redaction filter)."""
    if not rows:
        return
    import pyarrow as pa

    columns = list(rows[0])
    types = {"batch": pa.int32(), "logged_at": pa.timestamp("us", tz="UTC")}
    table = pa.table({c: pa.array([ops._clean(r.get(c)) for r in rows], type=types.get(c, pa.string()))
                      for c in columns})
    conn.register("log_rows", table)
    try:
        conn.execute(f"insert into ops.push_log ({', '.join(columns)}) select {', '.join(columns)} from log_rows")
    finally:
        conn.unregister("log_rows")


def release_parked(name: str) -> int:
    """`--retry-parked`: the parked records of this sync are pushed again (their failure count restarts)."""
    conn = connect()
    try:
        ops.ensure_tables(conn)
        count = conn.execute("select count(*) from ops.push_quarantine where model = ? and parked",
                             [name]).fetchone()[0]
        conn.execute("delete from ops.push_quarantine where model = ?", [name])
    finally:
        conn.close()
    return count


def _sample(cplan: ConnectionPlan, changes: list[tuple[str, Desired]], size: int) -> list[dict]:
    out = []
    for operation, desired in changes[:size]:
        after = desired.fields if operation != "delete" else {}
        out.append({"connection_id": cplan.connection_id, "operation": operation,
                    "record_key": desired.record_key, "external_id": desired.external_id,
                    "changes": {k: {"before": desired.before.get(k), "after": v} for k, v in after.items()}})
    return out


def push(name: str, verdict: GateVerdict | None, *, connections: ConnectionsFile, dry_run: bool = False,
         batch_size: int | None = None, progress: Callable[[str], None] | None = None,
         sample_size: int = 5, limit: int | None = None, only_ids: set[str] | None = None,
         retry_parked: bool = False, connection: str | None = None, shadow: bool = False) -> PushResult:
    """Push the sync's (or model's) changes to every connection it names (or only to `connection`: a
    Dagster partition). Refuses (PushRefused) unless `verdict` is a passed gate of its model, and unless each
    connection allows writing the object. `shadow`: gated like a push, each change it would write logged in
    ops.push_log (status `shadow`), nothing written to the CRM nor to ops.push_state. A paused connection
    (canonry pause) is left out (status `paused`, recorded in ops.pause_skips)."""
    from canonry.rollout.pause import pauses, record_skip

    paused = {cid: p for cid, p in pauses().items() if p.objects is None}
    say = progress or (lambda _m: None)
    if retry_parked and not dry_run:
        released = release_parked(name)
        say(f"released {released} parked record(s) of {name}")
    the_plan = plan(name, only_ids=only_ids, connection=connection)
    sync = the_plan.sync
    if not dry_run:
        if verdict is None or verdict.model != sync.model:
            raise PushRefused(f"no validation gate ran for {sync.model} in this build",
                              hint=f"run `canonry push {name}` (it builds, validates, then pushes)")
        if not verdict.passed:
            raise PushRefused(f"{sync.model} not pushed: {verdict.describe()}",
                              hint="fix the failing checks (see ops.validation_results and the dbt output); "
                                   "nothing was written", error_class=ErrorClass.DATA_ERROR)
    module = _writer_module(sync.provider)
    result = PushResult(sync.model, dry_run, verdict, sync=sync.name)
    conn = connect()
    try:
        ops.ensure_tables(conn)
    finally:
        conn.close()
    for connection_id in the_plan.connections:
        check_write_back(connections.get(connection_id), sync)
    budget = limit
    for connection_id, cplan in the_plan.connections.items():
        connection = connections.get(connection_id)
        if connection_id in paused and not dry_run:  # before the --limit budget: a paused one uses none of it
            result.connections.append(ConnectionResult(connection_id, sync.provider, status="paused"))
            record_skip(paused[connection_id], f"canonry push {sync.name}")
            say(f"{connection_id}: skipped, {paused[connection_id].describe()}")
            continue
        runtime = None
        if needs_lookup(sync, cplan, module):   # natural keys / in-doubt creates: looked up before counting
            from canonry.pipeline import build_runtime

            runtime = build_runtime(connection)
            try:
                resolve(sync, cplan, module.writer(runtime, sync.object))
            except CanonryError as exc:
                failed = ConnectionResult(connection_id, sync.provider, status="failed", error=exc,
                                          calls=runtime.telemetry.calls, run_id=uuid.uuid4().hex[:12])
                result.connections.append(failed)
                say(f"{connection_id}: stopped while looking records up by key: {exc}")
                if not dry_run and not shadow:
                    _record_run(failed, sync, connection, datetime.now(UTC))
                continue
        changes = cplan.changes
        held = 0
        if budget is not None:
            held = max(0, len(changes) - budget)
            changes = changes[:budget]
            budget -= len(changes)
        outcome = ConnectionResult(connection_id, sync.provider, unchanged=cplan.unchanged, skipped=cplan.skipped,
                                   parked=cplan.parked, held_back=held, data_errors=cplan.data_errors,
                                   inserts=sum(op == "insert" for op, _ in changes),
                                   updates=sum(op == "update" for op, _ in changes),
                                   deletes=sum(op == "delete" for op, _ in changes))
        result.connections.append(outcome)
        result.sample += _sample(cplan, changes, sample_size)
        if dry_run:
            outcome.status = "dry_run"
            continue
        if shadow:  # staged write-back: what would be written, logged; nothing sent
            outcome.status, outcome.run_id = "shadow", uuid.uuid4().hex[:12]
            ops.append("push_log", _log_rows(outcome.run_id, sync, connection, 0, "shadow", changes))
            continue
        _push_connection(sync, connection, cplan, changes, module, outcome, batch_size, say, runtime)
    return result


def _push_connection(sync: Sync, connection: Connection, cplan: ConnectionPlan, changes: list, module,
                     outcome: ConnectionResult, batch_size: int | None, say: Callable[[str], None],
                     runtime=None) -> None:
    from canonry.pipeline import build_runtime

    run_id = uuid.uuid4().hex[:12]
    outcome.run_id = run_id
    started_at = datetime.now(UTC)
    ops.upsert_connection(connection.id, connection.tenant, connection.provider)
    runtime = runtime or build_runtime(connection)   # the lookups' runtime: one call count, one rate budget
    writer = module.writer(runtime, sync.object)
    limit = module.BATCH_SIZE if not batch_size else min(batch_size, module.BATCH_SIZE)
    try:
        if cplan.data_errors:
            _commit(run_id, sync, connection, [
                {"run_id": run_id, "model": sync.name, "connection_id": connection.id, "provider": connection.provider,
                 "record_key": e["record_key"], "idempotency_key": None, "operation": None, "status": "data_error",
                 "provider_id": None, "batch": 0, "message": e["message"], "logged_at": datetime.now(UTC),
                 "error_class": "data_error"} for e in cplan.data_errors], [])
        changes = _settle_in_doubt(sync, connection, cplan, changes, writer, limit, run_id, outcome, say)
        batches = [changes[i:i + limit] for i in range(0, len(changes), limit)]
        for number, batch in enumerate(batches, start=1):
            _commit(run_id, sync, connection, _log_rows(run_id, sync, connection, number, "in_flight", batch), [])
            try:
                records = [_write_record(op, d, sync) for op, d in batch]
                results = writer.write([r for r in records if r.operation != "delete" or sync.spec.on_delete == "clear"])
                removals = [r for r in records if r.operation == "delete" and sync.spec.on_delete != "clear"]
                if removals:
                    results += writer.remove(removals, hard=sync.spec.on_delete == "delete")
            except CanonryError as exc:
                _commit(run_id, sync, connection, _log_rows(run_id, sync, connection, number, "failed", batch,
                                                            message=str(exc),
                                                            error_class=exc.error_class.value), [])
                raise
            by_key = {r.record_key: r for r in results}
            ok = [(op, d) for op, d in batch if by_key.get(d.record_key) and by_key[d.record_key].ok]
            bad = [(op, d) for op, d in batch if not (by_key.get(d.record_key) and by_key[d.record_key].ok)]
            for _, desired in bad:
                by_key.setdefault(desired.record_key, WriteOutcome(desired.record_key, False,
                                                                   message="the provider returned no result"))
            outcome.newly_parked += _commit(
                run_id, sync, connection,
                _log_rows(run_id, sync, connection, number, "written", ok, by_key)
                + _log_rows(run_id, sync, connection, number, "rejected", bad, by_key, error_class="rejected"),
                [(op, d, by_key[d.record_key].provider_id) for op, d in ok],
                [(d, by_key[d.record_key].message) for _, d in bad])
            outcome.written += len(ok)
            outcome.rejected += len(bad)
            outcome.rejections += [{"record_key": d.record_key, "external_id": d.external_id,
                                    "message": by_key[d.record_key].message} for _, d in bad]
            say(f"{connection.id}: batch {number}/{len(batches)}: {len(ok)} written, {len(bad)} rejected")
        outcome.status = "partial" if outcome.rejected or cplan.data_errors else "success"
    except CanonryError as exc:
        outcome.status, outcome.error = "failed", exc
        say(f"{connection.id}: stopped: {exc}")
    finally:
        outcome.calls = runtime.telemetry.calls
        _record_run(outcome, sync, connection, started_at)


def _settle_in_doubt(sync: Sync, connection: Connection, cplan: ConnectionPlan, changes: list, writer, limit: int,
                     run_id: str, outcome: ConnectionResult, say) -> list:
    """Records a crashed run left in flight: read them back; the version already there is not resent."""
    doubtful = [(op, d) for op, d in changes
                if cplan.in_doubt.get(d.record_key) == d.idempotency_key and d.external_id]
    if not doubtful:
        return changes
    say(f"{connection.id}: {len(doubtful)} record(s) in doubt after an interrupted run: reading them back")
    settled = []
    for start in range(0, len(doubtful), limit):
        chunk = doubtful[start:start + limit]
        current = writer.read([_write_record(op, d, sync) for op, d in chunk])
        for op, desired in chunk:
            values = current.get(desired.record_key)
            if op == "delete" and sync.spec.on_delete != "clear":
                if values is None:
                    settled.append((op, desired))
            elif values is not None and all(comparable(values.get(k)) == comparable(v)
                                            for k, v in desired.fields.items()):
                settled.append((op, desired))
    if settled:
        _commit(run_id, sync, connection, _log_rows(run_id, sync, connection, 0, "verified", settled,
                                                    message="already at the provider (in doubt after an "
                                                            "interrupted run)"),
                [(op, d, d.external_id) for op, d in settled])
        outcome.verified = len(settled)
        done = {d.record_key for _, d in settled}
        changes = [(op, d) for op, d in changes if d.record_key not in done]
    return changes


def _write_record(operation: str, desired: Desired, sync: Sync) -> WriteRecord:
    return WriteRecord(desired.record_key, desired.external_id, dict(desired.fields), desired.idempotency_key,
                       operation, match=desired.match if sync.spec.match.by == "natural_key" else None,
                       create=sync.spec.mode != "update")


def _record_run(outcome: ConnectionResult, sync: Sync, connection: Connection, started_at: datetime) -> None:
    error = outcome.error
    ops.append("push_runs", [{
        "run_id": outcome.run_id, "model": sync.name, "connection_id": connection.id, "provider": connection.provider,
        "started_at": started_at, "finished_at": datetime.now(UTC), "status": outcome.status,
        "inserts": outcome.inserts, "updates": outcome.updates, "deletes": outcome.deletes,
        "written": outcome.written, "rejected": outcome.rejected, "verified": outcome.verified,
        "calls": outcome.calls, "error_class": error.error_class.value if error else None,
        "error_message": str(error) if error else None, "trace_id": tracing.trace_id()}])
    audit.record("push", connection.id, records=outcome.written, tenant_id=connection.tenant, run_id=outcome.run_id,
                 model=sync.name, provider=connection.provider, status=outcome.status)
