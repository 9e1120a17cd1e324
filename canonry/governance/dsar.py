"""Data subject requests: find, export and erase one person's data everywhere Canonry keeps it.

A person is named by an email address. `find` first reads the canonical person tables (candidates, contacts,
leads, users) for the rows carrying that email, and learns the person's other identifiers from them: every
email and phone number, and the full name. Then it looks for them in

* every text and JSON column of every table of the warehouse (raw payloads of every provider, canonical,
  reverse-ETL models, the `ops` tables: push state and push log, errors, validation results);
* the webhook intake journal (SQLite) and every file of the data dir (dlt state, load packages and traces,
  dbt target and logs, logs, exports).

Emails and phone numbers are strong identifiers: a row holding one is about the person, anywhere. The full
name alone is matched only in rows of the connections where the person has a record (two people may share
a name; the `find` listing is what an operator reviews before erasing).

`erase` rewrites what `find` lists, in this order, each step idempotent (a second run finds nothing left):

1. the person's own raw records (the provider's `PERSONAL_FIELDS` of `sources/<slug>/settings.py`, at any
   depth) are replaced by `[erased]`, and every identifier in any other text is replaced too: the payload is
   rewritten, not flagged;
2. canonical person rows of the subject get every `pii`/`sensitive_pii` column (the contract's classes)
   replaced; a tombstone per own raw record goes into `ops.dsar_tombstones`, which every later sync reads:
   pages from the provider drop those records (a full refresh or replay cannot bring them back) until the
   provider deletes them itself;
3. the webhook journal and the data dir's files are scrubbed (text rewritten, dlt's finished load packages
   and run traces, which hold copies of pages, deleted);
4. the DuckDB file is rewritten (an UPDATE leaves the old bytes in freed blocks until the file is compacted).

The audit trail records each action with the sha256 of the email, never the email.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from canonry import canonical, ops
from canonry.governance import audit
from canonry.providers import spec
from canonry.warehouse import connect, data_dir, postgres_url, warehouse_path, writer_lock

ERASED = "[erased]"
# Canonical tables whose rows *are* people, and the columns that identify them.
PERSON_TABLES: dict[str, tuple[str, ...]] = {
    "ats_candidates": ("emails", "phones"), "crm_contacts": ("emails", "phones"), "crm_leads": ("emails", "phones"),
    "ats_users": ("email",), "crm_users": ("email",),
}
SKIPPED_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast")
TEXT_TYPES = ("VARCHAR", "JSON", "TEXT", "CHARACTER VARYING", "JSONB")
# Files of the data dir that hold copies of provider pages and no state anything needs: deleted, not rewritten.
DISPOSABLE = (re.compile(r"dlt/[^/]+/load/loaded/"), re.compile(r"dlt/[^/]+/trace\.pickle$"))
MIN_NAME_LENGTH = 5  # a full name shorter than this is not matched on its own (too many false hits)


@dataclass
class Subject:
    email: str
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    connections: set[str] = field(default_factory=set)

    @property
    def strong(self) -> list[str]:
        return sorted({e.lower() for e in self.emails | {self.email}} | self.phones)

    @property
    def all(self) -> list[str]:
        return sorted(set(self.strong) | self.names, key=len, reverse=True)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.email.strip().lower().encode()).hexdigest()


@dataclass
class Place:
    kind: str  # warehouse | journal | file
    where: str  # schema.table.column, the journal, or a path under the data dir
    rows: int
    keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "where": self.where, "rows": self.rows, "keys": self.keys[:50]}


# -- identifying the person ---------------------------------------------------------------------------------

def _values(raw: Any) -> list[str]:
    """The `value`s of a JSON array of {value, type} (or plain strings)."""
    if raw is None:
        return []
    items = json.loads(raw) if isinstance(raw, str) else raw
    return [str(i.get("value") if isinstance(i, dict) else i) for i in items or [] if i]


def subject(conn, email: str) -> Subject:
    """The person's identifiers, learnt from the canonical person rows that carry `email`."""
    person = Subject(email.strip())
    needle = f"%{person.email.lower()}%"
    present = set(_tables(conn, "canonical"))
    for table, columns in PERSON_TABLES.items():
        if table not in present:
            continue
        names = [c for c in ("first_name", "last_name", "name") if c in canonical.columns(table)]
        where = " or ".join(f"lower(cast({c} as varchar)) like ?" for c in columns)
        select = ", ".join([*columns, *names, "connection_id"])
        for row in conn.execute(f"select {select} from canonical.{table} where {where}",
                                [needle] * len(columns)).fetchall():
            values = dict(zip([*columns, *names, "connection_id"], row, strict=True))
            person.connections.add(values["connection_id"])
            if table in ("ats_users", "crm_users"):
                person.emails.add(str(values["email"]).lower())
            else:
                person.emails.update(v.lower() for v in _values(values["emails"]))
                person.phones.update(_values(values["phones"]))
            full = values.get("name") or " ".join(p for p in (values.get("first_name"), values.get("last_name")) if p)
            if full and len(full) >= MIN_NAME_LENGTH and full != ERASED:
                person.names.add(full)
    person.emails.add(person.email.lower())
    return person


# -- the warehouse ------------------------------------------------------------------------------------------

def _tables(conn, schema: str) -> list[str]:
    return [r[0] for r in conn.execute("select table_name from information_schema.tables where table_schema = ? "
                                       "and table_type = 'BASE TABLE'", [schema]).fetchall()]


def text_columns(conn) -> dict[tuple[str, str], list[str]]:
    """(schema, table) -> its text and JSON columns, for every base table of the warehouse."""
    rows = conn.execute(
        "select c.table_schema, c.table_name, c.column_name, upper(c.data_type) from information_schema.columns c "
        "join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name "
        "where t.table_type = 'BASE TABLE' order by c.table_schema, c.table_name, c.ordinal_position").fetchall()
    out: dict[tuple[str, str], list[str]] = {}
    columns: dict[tuple[str, str], set[str]] = {}
    for schema, table, column, kind in rows:
        if schema in SKIPPED_SCHEMAS or schema.startswith("pg_"):
            continue
        columns.setdefault((schema, table), set()).add(column)
        if kind in TEXT_TYPES:
            out.setdefault((schema, table), []).append(column)
    return {key: cols for key, cols in out.items() if cols and not (key[0] == "ops" and key[1] == "audit_log")}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _condition(column: str, person: Subject, has_connection: bool) -> tuple[str, list]:
    """SQL matching a row whose `column` holds a strong identifier, or the name in the person's connections."""
    text = f"lower(cast({_quote(column)} as varchar))"
    parts = [f"{text} like ?" for _ in person.strong]
    params: list = [f"%{s.lower()}%" for s in person.strong]
    if person.names and has_connection and person.connections:
        marks = ", ".join("?" for _ in person.connections)
        names = " or ".join(f"{text} like ?" for _ in person.names)
        parts.append(f"(connection_id in ({marks}) and ({names}))")
        params += sorted(person.connections) + [f"%{n.lower()}%" for n in sorted(person.names)]
    return " or ".join(parts), params


def _key_columns(conn, schema: str, table: str) -> str:
    names = {r[0] for r in conn.execute("select column_name from information_schema.columns where table_schema = ? "
                                        "and table_name = ?", [schema, table]).fetchall()}
    keys = [c for c in ("connection_id", "remote_id", "record_key", "run_id") if c in names]
    return " || ':' || ".join(f"coalesce(cast({c} as varchar), '')" for c in keys) if keys else "''"


def warehouse_places(conn, person: Subject, with_rows: bool = False) -> tuple[list[Place], dict[str, list[dict]]]:
    places, rows_by_place = [], {}
    for (schema, table), columns in text_columns(conn).items():
        names = {r[0] for r in conn.execute("select column_name from information_schema.columns "
                                            "where table_schema = ? and table_name = ?", [schema, table]).fetchall()}
        key = _key_columns(conn, schema, table)
        for column in columns:
            where, params = _condition(column, person, "connection_id" in names)
            found = conn.execute(f"select {key}, cast({_quote(column)} as varchar) from {_quote(schema)}."
                                 f"{_quote(table)} where {where}", params).fetchall()
            if found:
                where_name = f"{schema}.{table}.{column}"
                places.append(Place("warehouse", where_name, len(found), [k for k, _ in found]))
                if with_rows:
                    rows_by_place[where_name] = [{"key": k, "value": v} for k, v in found]
    return places, rows_by_place


# -- files: the webhook journal and the data dir ------------------------------------------------------------

def _journal() -> Path:
    return data_dir() / "webhooks" / "intake.sqlite"


def journal_places(person: Subject) -> tuple[list[Place], list[dict]]:
    path = _journal()
    if not path.exists():
        return [], []
    db = sqlite3.connect(path)
    try:
        found = [(seq, cid, bytes(body).decode("utf-8", "replace")) for seq, cid, body in
                 db.execute("select seq, connection_id, body from events").fetchall()]
    finally:
        db.close()
    hits = [(seq, cid, body) for seq, cid, body in found if _mentions(body, person)]
    if not hits:
        return [], []
    return ([Place("journal", "webhooks/intake.sqlite:events.body", len(hits), [f"{c}:{s}" for s, c, _ in hits])],
            [{"key": f"{c}:{s}", "value": b} for s, c, b in hits])


def _mentions(text: str, person: Subject) -> bool:
    lowered = text.lower()
    return any(s.lower() in lowered for s in person.all)


def _data_files() -> Iterable[Path]:
    root = data_dir()
    skip = {warehouse_path().resolve(), _journal().resolve()}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.resolve() not in skip and not path.name.startswith(warehouse_path().name):
            if not path.name.startswith("intake.sqlite"):
                yield path


def file_places(person: Subject) -> list[Place]:
    needles = [s.lower().encode() for s in person.all]
    places = []
    for path in _data_files():
        content = path.read_bytes().lower()
        count = sum(content.count(n) for n in needles)
        if count:
            places.append(Place("file", str(path.relative_to(data_dir())), count))
    return places


# -- the three requests -------------------------------------------------------------------------------------

def find(email: str, *, with_rows: bool = False, conn=None) -> dict:
    """Every place the person appears: {"subject": ..., "places": [...], "rows": {place: [...]}}."""
    own = conn is None
    conn = conn or connect(purpose="canonry dsar")
    try:
        ops.ensure_tables(conn)
        person = subject(conn, email)
        places, rows = warehouse_places(conn, person, with_rows)
        journal, events = journal_places(person)
        files = file_places(person)
        if with_rows and events:
            rows["webhooks/intake.sqlite:events.body"] = events
        audit.record("dsar_export" if with_rows else "dsar_find", f"subject:{person.digest[:16]}", conn,
                     records=sum(p.rows for p in places + journal), places=len(places + journal + files))
        return {"subject": {"sha256": person.digest, "identifiers": len(person.all),
                            "connections": sorted(person.connections)},
                "places": [p.as_dict() for p in places + journal + files], "rows": rows, "_person": person}
    finally:
        if own:
            conn.close()


def export(email: str, out: Path) -> dict:
    """Write every row and value `find` lists as one JSON document (the person's copy of their data)."""
    found = find(email, with_rows=True)
    found.pop("_person")
    document = {"exported_at": datetime.now(UTC).isoformat(), **found}
    for place in document["places"]:
        if place["kind"] == "file":
            place["content"] = (data_dir() / place["where"]).read_bytes().decode("utf-8", "replace")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    return document


def _personal_fields(provider: str) -> dict[str, tuple[str, ...]]:
    return dict(spec(provider).personal_fields)


def _scrub(value: Any, person: Subject, keys: tuple[str, ...] = ()) -> Any:
    """The JSON value with every identifier replaced, and every field named in `keys` emptied."""
    if isinstance(value, dict):
        return {k: (_emptied(v) if k in keys else _scrub(v, person, keys)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, person, keys) for v in value]
    if isinstance(value, str):
        return _replace(value, person)
    return value


def _emptied(value: Any) -> Any:
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return ERASED if isinstance(value, str) else None


def _replace(text: str, person: Subject) -> str:
    for needle in person.all:
        text = re.sub(re.escape(needle), ERASED, text, flags=re.IGNORECASE)
    return text


def _own_records(conn, person: Subject) -> list[tuple[str, str, str, str]]:
    """(provider, raw table, connection_id, remote_id) of the person's own raw records."""
    out = []
    strong = [f"%{s.lower()}%" for s in person.strong]
    for (schema, table), columns in text_columns(conn).items():
        if not schema.startswith("raw_") or "payload" not in columns:
            continue
        provider = schema.removeprefix("raw_")
        if table not in _personal_fields(provider):
            continue
        where = " or ".join("lower(payload) like ?" for _ in strong)
        for cid, rid in conn.execute(f"select distinct connection_id, remote_id from {schema}.{table} where {where}",
                                     strong).fetchall():
            out.append((provider, table, cid, rid))
    return out


def erase(email: str) -> dict:
    """Erase the person everywhere `find` sees them (idempotent: a second run changes nothing)."""
    conn = connect(purpose="canonry dsar erase")
    try:
        ops.ensure_tables(conn)
        person = subject(conn, email)
        own = _own_records(conn, person)
        mentions = _raw_mentions(conn, person)
        changed = _erase_raw_records(conn, person, own)
        changed += _erase_canonical_people(conn, person)
        changed += _erase_everywhere(conn, person)
        known = {tuple(r) for r in conn.execute("select connection_id, raw_table, remote_id from ops.dsar_tombstones "
                                                "where subject_sha256 = ?", [person.digest]).fetchall()}
        now = datetime.now(UTC)
        ops.append("dsar_tombstones", [{"connection_id": cid, "raw_table": table, "remote_id": rid,
                                        "subject_sha256": person.digest, "erased_at": now}
                                       for table, cid, rid in sorted({(t, c, r) for _, t, c, r in own} | mentions)
                                       if (cid, table, rid) not in known], conn)
        journal = _erase_journal(person)
        files = _erase_files(person)
        audit.record("dsar_erase", f"subject:{person.digest[:16]}", conn, records=changed,
                     own_records=len(own), journal_events=journal, files=files)
    finally:
        conn.close()
    if not postgres_url():
        compact_duckdb()
    return {"subject": person.digest, "own_records": len(own), "rows_rewritten": changed,
            "journal_events": journal, "files": files}


def _raw_mentions(conn, person: Subject) -> set[tuple[str, str, str]]:
    """(raw table, connection_id, remote_id) of every raw record that mentions the person (an application
    carrying their name, a note with their email): tombstoned with their own records."""
    out = set()
    for (schema, table), columns in text_columns(conn).items():
        if schema.startswith("raw_") and "payload" in columns:
            where, params = _condition("payload", person, True)
            out |= {(table, cid, rid) for cid, rid in conn.execute(
                f"select distinct connection_id, remote_id from {schema}.{table} where {where}", params).fetchall()}
    return out


def _erase_raw_records(conn, person: Subject, own: list[tuple[str, str, str, str]]) -> int:
    changed = 0
    for provider, table, cid, rid in own:
        keys = _personal_fields(provider).get(table, ())
        rows = conn.execute(f"select distinct payload from raw_{provider}.{table} where connection_id = ? "
                            "and remote_id = ?", [cid, rid]).fetchall()
        for (payload,) in rows:  # every stored version of the record
            scrubbed = json.dumps(_scrub(json.loads(payload), person, keys))
            if scrubbed != payload:
                conn.execute(f"update raw_{provider}.{table} set payload = ? where connection_id = ? and "
                             "remote_id = ? and payload = ?", [scrubbed, cid, rid, payload])
                changed += 1
    return changed


def _erase_canonical_people(conn, person: Subject) -> int:
    """Every pii / sensitive_pii column of the subject's canonical person rows, by the contract's classes."""
    changed = 0
    present = set(_tables(conn, "canonical"))
    for table, columns in PERSON_TABLES.items():
        if table not in present:
            continue
        sets = []
        for column in canonical.columns(table):
            doc = canonical.column_doc(table, column)
            if doc.classification not in ("pii", "sensitive_pii"):
                continue
            if doc.type == "json":
                empty = "{}" if column in canonical.JSON_OBJECT_COLUMNS else "[]"
                sets.append(f"{column} = cast('{empty}' as json)" if not postgres_url() else
                            f"{column} = '{empty}'::jsonb")
            elif doc.type == "text":
                sets.append(f"{column} = '{ERASED}'")
            else:
                sets.append(f"{column} = null")
        where = " or ".join(f"lower(cast({c} as varchar)) like ?" for c in columns for _ in person.strong)
        params = [f"%{s.lower()}%" for _ in columns for s in person.strong]
        count = conn.execute(f"select count(*) from canonical.{table} where {where}", params).fetchone()[0]
        if count:
            conn.execute(f"update canonical.{table} set {', '.join(sets)} where {where}", params)
            changed += count
    return changed


def _erase_everywhere(conn, person: Subject) -> int:
    """Every identifier in every text/JSON column of every table, replaced where a row holds one."""
    changed = 0
    for (schema, table), columns in text_columns(conn).items():
        names = {r[0] for r in conn.execute("select column_name from information_schema.columns "
                                            "where table_schema = ? and table_name = ?", [schema, table]).fetchall()}
        kinds = dict(conn.execute("select column_name, upper(data_type) from information_schema.columns "
                                  "where table_schema = ? and table_name = ?", [schema, table]).fetchall())
        for column in columns:
            where, params = _condition(column, person, "connection_id" in names)
            count = conn.execute(f"select count(*) from {_quote(schema)}.{_quote(table)} where {where}",
                                 params).fetchone()[0]
            if not count:
                continue
            expression = f"cast({_quote(column)} as varchar)"
            for needle in person.all:
                pattern = ("(?i)" + re.escape(needle)).replace("'", "''")  # a SQL literal (O'Brien)
                expression = f"regexp_replace({expression}, '{pattern}', '{ERASED}', 'g')"
            cast_back = {"JSON": "json", "JSONB": "jsonb"}.get(kinds[column])
            if cast_back:
                expression = f"cast({expression} as {cast_back})"
            conn.execute(f"update {_quote(schema)}.{_quote(table)} set {_quote(column)} = {expression} where {where}",
                         params)
            changed += count
    return changed


def _erase_journal(person: Subject) -> int:
    path = _journal()
    if not path.exists():
        return 0
    db = sqlite3.connect(path, isolation_level=None)
    try:
        changed = 0
        for seq, body in db.execute("select seq, body from events").fetchall():
            text = bytes(body).decode("utf-8", "replace")
            if _mentions(text, person):
                db.execute("update events set body = ? where seq = ?", [_replace(text, person).encode(), seq])
                changed += 1
        if changed:
            db.execute("vacuum")  # freed pages would still hold the old bodies
        return changed
    finally:
        db.close()


def _erase_files(person: Subject) -> int:
    touched = 0
    for place in file_places(person):
        path = data_dir() / place.where
        relative = place.where.replace(os.sep, "/")
        if any(p.search(relative) for p in DISPOSABLE):
            path.unlink()
        else:
            content = path.read_bytes()
            try:
                path.write_text(_replace(content.decode("utf-8"), person), encoding="utf-8")
            except UnicodeDecodeError:
                path.unlink()  # binary copy of data (no rewriting it safely): the copy goes, the warehouse stays
        touched += 1
    return touched


def compact_duckdb() -> None:
    """Rewrite the DuckDB file so that the old values do not survive in freed blocks."""
    import duckdb

    path = warehouse_path()
    fresh = path.with_name(path.name + ".compacting")
    fresh.unlink(missing_ok=True)
    with writer_lock("canonry dsar erase (compaction)"):
        conn = duckdb.connect(str(path))
        try:
            conn.execute(f"attach '{fresh}' as compacted")
            catalog = conn.execute("select current_database()").fetchone()[0]
            conn.execute(f"copy from database {_quote(catalog)} to compacted")
            conn.execute("detach compacted")
        finally:
            conn.close()
        os.replace(fresh, path)
        Path(str(path) + ".wal").unlink(missing_ok=True)


# -- the sync side of the tombstones ------------------------------------------------------------------------

def tombstones(conn, connection_id: str) -> dict[str, set[str]]:
    """raw table -> remote ids erased for this connection (what its syncs must not load again)."""
    ops.ensure_tables(conn)
    out: dict[str, set[str]] = {}
    for table, remote_id in conn.execute("select raw_table, remote_id from ops.dsar_tombstones "
                                         "where connection_id = ?", [connection_id]).fetchall():
        out.setdefault(table, set()).add(remote_id)
    return out


def drop_tombstoned(source, erased: dict[str, set[str]]) -> None:
    """Make every resource of a dlt source drop the pages' rows of erased records, by the raw table each
    item goes to (a resource may write several: Lever's opportunities pass carries their interviews)."""
    if not erased:
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    value_sets = {table: pa.array(sorted(ids), pa.string()) for table, ids in erased.items() if ids}
    if not value_sets:
        return
    for name, resource in source.resources.items():
        own_table = resource.table_name if isinstance(resource.table_name, str) else name
        resource.add_map(_without(value_sets, own_table, pc))


def _without(value_sets: dict, own_table: str, pc):
    """A dlt map step taking the item's meta (dlt passes it to a two-argument step): an item marked for
    another table (`dlt.mark.with_table_name`) is filtered by that table's erased ids."""
    import pyarrow as pa

    def keep(item, meta=None):
        value_set = value_sets.get(getattr(meta, "table_name", None) or own_table)
        if value_set is not None and isinstance(item, pa.Table) and "remote_id" in item.column_names:
            return item.filter(pc.invert(pc.is_in(item["remote_id"], value_set=value_set)))
        return item

    return keep
