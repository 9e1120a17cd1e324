"""The query layer of the read API: every read is filtered by the key's tenant here, not by the caller.

On DuckDB every request reads a published snapshot of the warehouse (canonry/api/snapshot.py) through its
own cursor: never the warehouse file itself, so a sync or build is never delayed by a reader and a reader
never meets DuckDB's lock. Before the first snapshot can be made (no warehouse, or one being written) the
request answers 503 with Retry-After (`WarehouseBusy`). On PostgreSQL the API reads the warehouse directly,
one short-lived read-only session per request.

Pages are keyset-paginated on the canonical id alone. The id of a record never changes (a hash of its
connection and provider id), while every time-like key does when the record changes: with (`_load_id`, id)
a record updated between two pages moves behind the cursor and comes twice; with (`remote_updated_at`, id)
it comes twice, and a late-arriving record (the provider's clock, behind the cursor) is skipped. On the id,
a walk over all pages returns every record that existed when it started exactly once, in its latest
version at the time its page was read; records a concurrent load adds appear or not by where their id
falls. Changes are followed with `modified_after` (on `last_synced_at`), not with the page order.

The SQL is the same for DuckDB and PostgreSQL but for the parameter marker (`Dialect`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from canonry.api.resources import Resource
from canonry.api.snapshot import NoSnapshot, Snapshots
from canonry.canonical import column_kind
from canonry.warehouse import postgres_url

CANONICAL_SCHEMA = "canonical"
BUSY_RETRY_AFTER_SECONDS = 2


class WarehouseBusy(Exception):
    """No consistent state of the warehouse can be read yet (DuckDB: no snapshot published so far)."""


class InvalidParameter(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Dialect:
    name: str
    marker: str  # the DB-API parameter marker


DUCKDB = Dialect("duckdb", "?")
POSTGRES = Dialect("postgres", "%s")


_SNAPSHOTS: dict[Path, Snapshots] = {}


def snapshots() -> Snapshots:
    """This process's snapshots of the configured warehouse."""
    from canonry.warehouse import data_dir, warehouse_path

    path = warehouse_path()
    if path not in _SNAPSHOTS:
        _SNAPSHOTS[path] = Snapshots(path, data_dir() / "api" / "snapshots")
    return _SNAPSHOTS[path]


@contextmanager
def reader() -> Iterator[tuple[Any, Dialect]]:
    """A read-only connection for one request, and its dialect."""
    url = postgres_url()
    if url:
        import psycopg2

        conn = psycopg2.connect(url)
        try:
            conn.set_session(readonly=True, autocommit=True)
            yield conn, POSTGRES
        finally:
            conn.close()
        return
    try:
        cursor = snapshots().cursor()
    except NoSnapshot as exc:
        raise WarehouseBusy(str(exc)) from None
    try:
        yield cursor, DUCKDB
    finally:
        cursor.close()


def _missing_relation(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in ("CatalogException", "UndefinedTable") or "does not exist" in str(exc)


def _rows(conn, dialect: Dialect, sql: str, params: list) -> tuple[list[str], list[tuple]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql.replace("{p}", dialect.marker), params)
        names = [d[0] for d in cursor.description]
        return names, cursor.fetchall()
    except Exception as exc:
        if _missing_relation(exc):  # a family no connection feeds yet: its table was never built
            if dialect is POSTGRES:
                conn.rollback()
            return [], []
        raise
    finally:
        cursor.close()


# -- values -------------------------------------------------------------------------------------------

def _json_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind in ("json_list", "json_object"):
        return orjson.loads(value) if isinstance(value, str | bytes) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _record(names: list[str], row: tuple, kinds: dict[str, str]) -> dict[str, Any]:
    return {name: _json_value(value, kinds[name]) for name, value in zip(names, row, strict=True)
            if name in kinds}


# -- cursors ------------------------------------------------------------------------------------------

CURSOR_VERSION = "id1"  # what a cursor is keyed on: a cursor of another version is refused, not misread


def encode_cursor(record_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([CURSOR_VERSION, record_id]).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and value[0] == CURSOR_VERSION
            and isinstance(value[1], str)):
        raise InvalidParameter("cursor", "not a cursor of this API: pass the `next` of the previous page as is")
    return value[1]


# -- queries ------------------------------------------------------------------------------------------

def selected_columns(resource: Resource, fields: list[str] | None) -> list[str]:
    wanted = set(fields or resource.columns) | {resource.id_column}
    return [c for c in resource.columns if c in wanted]


def list_page(conn, dialect: Dialect, resource: Resource, tenant: str, *, limit: int,
              after_id: str | None = None, modified_after: datetime | None = None,
              include_deleted: bool = False, fields: list[str] | None = None) -> tuple[list[dict], str | None]:
    """One page of the tenant's records after the id `after_id` (a decoded cursor), and the opaque cursor of
    the next page (None on the last)."""
    key, selected = resource.id_column, selected_columns(resource, fields)
    where, params = ["tenant_id = {p}"], [tenant]
    if not include_deleted:
        where.append("not is_deleted")
    if modified_after is not None:
        where.append("last_synced_at > {p}")
        params.append(modified_after)
    if after_id is not None:
        where.append(f"{key} > {{p}}")
        params.append(after_id)
    sql = (f"select {', '.join(selected)} from {CANONICAL_SCHEMA}.{resource.table} "
           f"where {' and '.join(where)} order by {key} limit {int(limit) + 1}")
    names, rows = _rows(conn, dialect, sql, params)
    kinds = {c: column_kind(resource.table, c) for c in selected}
    records = [_record(names, row, kinds) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor(rows[limit - 1][names.index(key)])
    return records, next_cursor


def get_record(conn, dialect: Dialect, resource: Resource, tenant: str, record_id: str,
               fields: list[str] | None = None) -> dict | None:
    """The tenant's record with this id (deleted ones too), or None — another tenant's id included. It also
    carries provider, connection_id and remote_id (what `remote_data` looks up) even when not selected."""
    selected = selected_columns(resource, fields)
    extra = [c for c in ("provider", "connection_id", "remote_id") if c not in selected]
    sql = (f"select {', '.join(selected + extra)} from {CANONICAL_SCHEMA}.{resource.table} "
           f"where tenant_id = {{p}} and {resource.id_column} = {{p}}")
    names, rows = _rows(conn, dialect, sql, [tenant, record_id])
    if not rows:
        return None
    kinds = {c: column_kind(resource.table, c) for c in selected + extra}
    return _record(names, rows[0], kinds)


# -- remote data ----------------------------------------------------------------------------------------

class RawLineage:
    """Which raw tables feed each (provider, canonical table), read from dbt's manifest (re-read when a
    build rewrites it): the tables whose rows `remote_data` looks up by (connection_id, remote_id)."""

    def __init__(self) -> None:
        self._stamp: int | None = None
        self._tables: dict[tuple[str, str], list[tuple[str, str]]] = {}

    @staticmethod
    def _manifest() -> Path:
        from canonry.warehouse import dbt_manifest_path

        return dbt_manifest_path()

    def tables(self, provider: str, table: str) -> list[tuple[str, str]]:
        path = self._manifest()
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if stamp != self._stamp:
            self._tables, self._stamp = self._read(path), stamp
        return self._tables.get((provider, table), [])

    @staticmethod
    def _read(path: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
        manifest = json.loads(path.read_text())
        nodes, sources = manifest["nodes"], manifest["sources"]
        out: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for node in nodes.values():
            name = node.get("name", "")
            if node.get("resource_type") != "model" or not name.startswith("int_") or "__" not in name:
                continue
            provider, table = name.removeprefix("int_").split("__", 1)
            seen, stack, found = set(), list(node["depends_on"]["nodes"]), []
            while stack:
                parent = stack.pop()
                if parent in seen:
                    continue
                seen.add(parent)
                if parent in sources and sources[parent]["schema"] == f"raw_{provider}":
                    found.append((sources[parent]["schema"], sources[parent]["identifier"]))
                elif parent in nodes:
                    stack.extend(nodes[parent]["depends_on"].get("nodes", []))
            out[(provider, table)] = sorted(set(found))
        return out


def remote_data(conn, dialect: Dialect, lineage: RawLineage, resource: Resource, record: dict) -> list[dict]:
    """The latest raw payload of this record in each raw table of its lineage ([] when none matches: a
    record derived from part of a raw object, e.g. a HubSpot deal stage of a pipeline)."""
    out = []
    for schema, table in lineage.tables(record["provider"], resource.table):
        sql = (f"select payload from {schema}.{table} where connection_id = {{p}} and remote_id = {{p}} "
               "order by remote_updated_at desc nulls last, is_deleted desc, _dlt_load_id desc limit 1")
        _, rows = _rows(conn, dialect, sql, [record["connection_id"], record["remote_id"]])
        if rows:
            payload = rows[0][0]
            out.append({"source": f"{schema}.{table}",
                        "data": orjson.loads(payload) if isinstance(payload, str | bytes) else payload})
    return out
