"""Audit every guard check in ``ops.query_audit`` (DuckDB warehouse).

Only hashes and outcomes are stored, never the question or query text (they may contain personal data).
Each write opens its own short-lived read-write connection, so it never holds the warehouse open; if the
warehouse is locked by another writer, the audit trail goes to its spool file and the command goes on.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from canonry.guard.verdict import Verdict

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS ops.query_audit (
        ts TIMESTAMP NOT NULL,
        kind VARCHAR NOT NULL,            -- soql | sql
        command VARCHAR NOT NULL,         -- check | ask | run
        question_sha256 VARCHAR NOT NULL, -- sha256 of the question (ask) or of the query (check, run)
        query_sha256 VARCHAR,             -- sha256 of the checked query
        verdict VARCHAR NOT NULL,         -- allow | rewrite | reject
        codes VARCHAR NOT NULL,           -- JSON list of violation codes
        latency_ms DOUBLE NOT NULL,       -- guard time (ask: model call + guard, per attempt)
        attempt INTEGER                   -- ask: 0 = first answer, 1.. = repairs
    )""",
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    kind: str
    command: str
    question: str
    query: str | None
    verdict: str
    codes: list[str]
    latency_ms: float
    attempt: int | None = None

    def row(self) -> tuple:
        return (
            datetime.now(UTC).replace(tzinfo=None),
            self.kind,
            self.command,
            sha256(self.question),
            sha256(self.query) if self.query is not None else None,
            self.verdict,
            json.dumps(self.codes),
            round(self.latency_ms, 3),
            self.attempt,
        )


def record(kind: str, command: str, question: str, verdict: Verdict, latency_ms: float,
           attempt: int | None = None) -> AuditRecord:
    """Build the audit record of one guard check (the question is hashed when written)."""
    return AuditRecord(kind, command, question, verdict.query, verdict.verdict, verdict.codes, latency_ms, attempt)


def write(records: list[AuditRecord]) -> bool:
    """Append records to ``ops.query_audit``. Returns False (and says why on stderr) if it could not."""
    if not records:
        return True
    import duckdb

    from canonry.errors import CanonryError
    from canonry.warehouse import connect, postgres_url

    try:
        conn = connect()
    except (duckdb.Error, CanonryError) as error:
        # The trail of data movement must not have holes: it goes to the audit spool (a file; the next
        # writer of the audit log moves it in). The per-check statistics of ops.query_audit are dropped.
        from canonry.governance import audit

        for r in records:
            audit.spool("query", f"{r.kind} {r.command}", verdict=r.verdict,
                        query_sha256=sha256(r.query) if r.query is not None else None)
        print(f"audit: the warehouse is not writable now ({error.__class__.__name__}); the audit trail went "
              "to its spool, the query statistics were dropped", file=sys.stderr)
        return False
    try:
        for statement in DDL:
            # PostgreSQL spells DuckDB's DOUBLE `DOUBLE PRECISION`.
            conn.execute(statement.replace(" DOUBLE ", " DOUBLE PRECISION ") if postgres_url() else statement)
        conn.executemany(
            "INSERT INTO ops.query_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [r.row() for r in records]
        )
        from canonry.governance import audit

        for r in records:  # the trail of data movement: a query reads the warehouse (hashes only, as above)
            audit.record("query", f"{r.kind} {r.command}", conn, verdict=r.verdict,
                         query_sha256=sha256(r.query) if r.query is not None else None)
    finally:
        conn.close()
    return True
