"""Guarded SOQL against a Salesforce connection (`canonry soql check|run --connection <id>`).

* **The catalog** the guard checks against is the connection's own org: built from its describe endpoints
  (`GET {instance_url}/services/data/v62.0/sobjects`, `…/sobjects/<Object>/describe`,
  `…/limits/recordCount`) through the connection's OAuth credential, and cached as JSON under the data dir
  (`<data dir>/catalogs/<connection id>.json`) for `CATALOG_TTL_SECONDS` (`--refresh-catalog` re-fetches).
* **Running**: the guard decides first — a rejected query never reaches the provider; a rewritten one (e.g.
  a LIMIT added) runs rewritten. Then `GET {instance_url}/services/data/v62.0/query?q=…` with the
  connection's session (rate budget, retries, error classes, one refresh on 401 — the Salesforce source's
  `SalesforceClient`), following `nextRecordsUrl` until the query's LIMIT (or `max_rows`) is reached.

This module is app layer (it joins the guard to a connection); `canonry/guard/` stays standalone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canonry.errors import CanonryError, ErrorClass

CATALOG_TTL_SECONDS = 24 * 3600     # describe an org at most once a day (as the source does)
DEFAULT_BATCH_SIZE = 2000           # Sforce-Query-Options batchSize (200-2,000)
PROVIDER = "salesforce"


def _require_salesforce(connection) -> None:
    if connection.provider != PROVIDER:
        raise CanonryError(ErrorClass.CONFIG_ERROR, f"connection {connection.id!r} is a {connection.provider} "
                           "connection; SOQL runs against Salesforce connections only",
                           provider=connection.provider, connection_id=connection.id,
                           hint="pass the id of a salesforce connection")


def catalog_path(connection_id: str) -> Path:
    from canonry.warehouse import data_dir

    return data_dir() / "catalogs" / f"{connection_id}.json"


def _client(connection):
    from canonry.pipeline import build_runtime
    from canonry.secrets import install_redaction
    from sources.salesforce.helpers import SalesforceClient

    install_redaction()
    runtime = build_runtime(connection)
    return runtime, SalesforceClient(runtime)


def connection_catalog(connection, *, refresh: bool = False, client=None):
    """The guard catalog of the connection's org: the cached copy if fresh, else fetched and cached."""
    from canonry.guard.catalog import Catalog, load_catalog

    _require_salesforce(connection)
    path = catalog_path(connection.id)
    if not refresh and path.exists() and time.time() - path.stat().st_mtime < CATALOG_TTL_SECONDS:
        return load_catalog(path)
    if client is None:
        _, client = _client(connection)

    def get(relative: str, **params: Any) -> Any:
        return client.get(client.api + relative, params=params or None)

    return Catalog.from_api(get, cache_path=path)


@dataclass
class SoqlResult:
    query: str                       # what ran (the guard's rewrite, if any)
    columns: list[str]
    rows: list[list[Any]]
    total_size: int | None           # the provider's totalSize (COUNT() queries: the count)
    calls: int                       # API calls spent on the query (after the catalog)
    elapsed_ms: float
    records: list[dict] = field(default_factory=list, repr=False)  # the records as the provider sent them


def run_soql(connection, query: str, *, max_rows: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             client=None) -> SoqlResult:
    """Run an already guarded query: `query`, then `nextRecordsUrl` batches until `max_rows`."""
    _require_salesforce(connection)
    if client is None:
        _, client = _client(connection)
    if max_rows is None:
        max_rows = query_limit(query)
    telemetry = client.runtime.telemetry
    calls_before = telemetry.calls
    headers = {"Sforce-Query-Options": f"batchSize={max(200, min(2000, batch_size))}"}
    started = time.perf_counter()
    body = client.get(f"{client.api}/query", params={"q": query}, headers=headers)
    records: list[dict] = []
    while True:
        batch = body.get("records") if isinstance(body, dict) else None
        if not isinstance(batch, list):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "query response has no `records` array",
                               provider=PROVIDER, connection_id=connection.id, endpoint="/services/data/v62.0/query")
        records.extend(batch)
        if max_rows is not None and len(records) >= max_rows:
            records = records[:max_rows]
            break
        if body.get("done", True) or not body.get("nextRecordsUrl"):
            break
        body = client.get(body["nextRecordsUrl"], headers=headers)
    total = body.get("totalSize") if isinstance(body, dict) else None
    columns, rows = tabulate(records)
    if not records and not columns and total is not None and "count()" in query.lower().replace(" ", ""):
        columns, rows = ["count"], [[total]]  # SELECT COUNT() answers with totalSize only
    return SoqlResult(query, columns, rows, total, telemetry.calls - calls_before,
                      (time.perf_counter() - started) * 1000, records)


def query_limit(query: str) -> int | None:
    """The outer LIMIT of a SOQL query (None when it has none or does not parse)."""
    from canonry.guard.soql_dialect import SoqlSyntaxError, parse_soql

    try:
        limit = parse_soql(query).args.get("limit")
    except SoqlSyntaxError:
        return None
    try:
        return int(limit.expression.name) if limit is not None else None
    except (AttributeError, ValueError):
        return None


def flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """One row from a record: `attributes` dropped, parent relationships as `Account.Name`, child
    subqueries (`{"records": [...]}`) as a JSON list of their flattened rows."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        name = prefix + key
        if isinstance(value, dict) and isinstance(value.get("records"), list):
            out[name] = [flatten(r) for r in value["records"]]
        elif isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def tabulate(records: list[dict]) -> tuple[list[str], list[list[Any]]]:
    flat = [flatten(r) for r in records]
    columns: list[str] = list(dict.fromkeys(k for row in flat for k in row))
    # A parent relationship that is null in one record and present in another: keep only its fields.
    columns = [c for c in columns if not (any(o.startswith(c + ".") for o in columns)
                                          and all(row.get(c) is None for row in flat))]
    return columns, [[row.get(c) for c in columns] for row in flat]


def render_table(columns: list[str], rows: list[list[Any]], max_width: int = 60) -> str:
    """A plain aligned text table (no colours: it is piped as often as read)."""

    def cell(value: Any) -> str:
        text = "" if value is None else json.dumps(value) if isinstance(value, list | dict) else str(value)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
