"""The PostgreSQL warehouse (`CANONRY_WAREHOUSE=postgresql://…`): its URL, its connection, and the clear
errors when it cannot be used.

The URL's password may be a secret reference (`postgresql://canonry:env:PG_PASSWORD@db:5432/warehouse`, or
percent-encoded `env%3APG_PASSWORD`): it is resolved here, registered with the redaction filter, and handed
to psycopg2, dlt and dbt as a separate value — never written back into a URL that is logged or stored.

`connect()` returns a `PostgresConnection`: the small part of DuckDB's connection API that canonry uses
(`execute(sql, params)` with `?` placeholders, `executemany`, `fetchone`, `fetchall`, `description`, `df`,
`close`), in autocommit mode, so that the ops tables, the gate and the forensics run unchanged on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from canonry import providers
from canonry.errors import ConfigError

URL_SCHEMES = ("postgres://", "postgresql://")
URL_FORM = "postgresql://user[:password or secret reference]@host[:port]/database"
CONNECT_TIMEOUT_S = 5

# A provider whose dbt models (staging, intermediate) still use DuckDB-only list and struct functions
# declares `postgres_models=False` in its spec: on PostgreSQL its syncs are refused and its models left out
# of the build, with a config_error saying so. The others run there and are tested end to end (tests/postgres/).

def portable_providers() -> list[str]:
    return [p for p in providers.slugs() if providers.spec(p).postgres_models]


def unported_providers() -> list[str]:
    return [p for p in providers.slugs() if not providers.spec(p).postgres_models]


def require_portable(provider: str, connection_id: str | None = None) -> None:
    """A config_error when this provider's models do not run on PostgreSQL yet (never a half-built run)."""
    if provider in unported_providers():
        raise ConfigError(f"the {provider} models do not run on the PostgreSQL warehouse yet (PostgreSQL "
                          f"runs: {', '.join(portable_providers())})", provider=provider, connection_id=connection_id,
                          hint="sync this connection into a DuckDB warehouse (unset CANONRY_WAREHOUSE)")


@dataclass(frozen=True)
class PostgresTarget:
    host: str
    port: int
    user: str
    password: str
    database: str
    redacted_url: str

    def psycopg2_kwargs(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password or None,
                "dbname": self.database, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "canonry"}


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "<unparsable URL>"


def parse_target(url: str) -> PostgresTarget:
    """The connection settings of a PostgreSQL URL; its password resolved when it is a secret reference."""
    from canonry.secrets import REFERENCE, SecretNotFound, register_secret, resolve_secret

    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigError(f"CANONRY_WAREHOUSE={shown}: not a valid URL ({exc})", hint=f"write it as {URL_FORM}") from None
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database or "/" in database:
        raise ConfigError(f"CANONRY_WAREHOUSE={shown}: a PostgreSQL URL needs a host and a database name",
                          hint=f"write it as {URL_FORM}")
    password = unquote(parts.password or "")
    if REFERENCE.match(password):
        try:
            password = resolve_secret(password)
        except SecretNotFound as exc:
            raise ConfigError(f"CANONRY_WAREHOUSE={shown}: the password reference does not resolve: {exc}",
                              hint=exc.hint) from None
    register_secret(password)
    return PostgresTarget(parts.hostname, port, unquote(parts.username or "postgres"), password, database, shown)


def _driver():
    try:
        import psycopg2
    except ImportError:
        raise ConfigError("the PostgreSQL warehouse needs the psycopg2 driver, which is not installed",
                          hint="pip install 'canonry[postgres]' (make installs it)") from None
    return psycopg2


def connect(target: PostgresTarget) -> PostgresConnection:
    """An autocommit connection; an unreachable server, a refused login or a missing database is one
    config_error naming the URL (password redacted)."""
    from canonry.secrets import redact

    psycopg2 = _driver()
    try:
        raw = psycopg2.connect(**target.psycopg2_kwargs())
    except psycopg2.OperationalError as exc:
        reason = redact(" ".join(str(exc).split()))[:300]
        raise ConfigError(f"cannot connect to the PostgreSQL warehouse {target.redacted_url}: {reason}",
                          hint="check that the server runs and the URL's host, port, user, password and "
                               "database are right (create the database with `createdb`)") from None
    raw.autocommit = True
    # JSON columns come back as text, as they do from DuckDB (callers json.loads them).
    from psycopg2.extras import register_default_json, register_default_jsonb

    register_default_json(raw, loads=lambda text: text)
    register_default_jsonb(raw, loads=lambda text: text)
    return PostgresConnection(raw)


def qmark_to_pyformat(sql: str) -> str:
    """`?` placeholders (DuckDB's) -> `%s` (psycopg2's); `%` doubled; quoted text left alone."""
    out, quote = [], None
    for char in sql:
        if quote:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        else:
            out.append("%%" if char == "%" else char)
    return "".join(out)


class PostgresConnection:
    """The part of DuckDB's connection API canonry uses, over a psycopg2 connection."""

    dialect = "postgres"

    def __init__(self, raw) -> None:
        self.raw = raw
        self._cursor = None

    def execute(self, sql: str, params: list | tuple | None = None) -> PostgresConnection:
        cursor = self.raw.cursor()
        if params is None:
            cursor.execute(sql)
        else:
            cursor.execute(qmark_to_pyformat(sql), list(params))
        self._cursor = cursor
        return self

    def executemany(self, sql: str, rows: list) -> PostgresConnection:
        from psycopg2.extras import execute_batch

        cursor = self.raw.cursor()
        execute_batch(cursor, qmark_to_pyformat(sql), rows, page_size=500)
        self._cursor = cursor
        return self

    @property
    def description(self):
        return self._cursor.description if self._cursor else None

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self) -> list:
        return self._cursor.fetchall()

    def df(self):
        import pandas as pd

        names = [d[0] for d in self._cursor.description]
        return pd.DataFrame.from_records(self._cursor.fetchall(), columns=names)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def ddl_lock(target: PostgresTarget, name: str, *, conn: PostgresConnection | None = None,
             timeout_s: float = 1800.0) -> Iterator[None]:
    """Hold a transaction-independent advisory lock named `name` (a raw dataset, `ops`) while its tables may
    be created or altered. PostgreSQL takes many writers, but two sessions creating the same table at once
    collide in its catalog ("duplicate key value violates unique constraint pg_type_typname_nsp_index"):
    concurrent syncs (`sync --jobs N`, Dagster steps) take turns for the steps that may run DDL — dlt's
    schema migration at load, `ops.ensure_tables` — and run everything else at once. Waits at most
    `timeout_s` (lock_timeout), then fails like any statement that timed out."""
    own = conn is None
    session = connect(target) if own else conn
    try:
        session.execute("select set_config('lock_timeout', ?, false)", [f"{int(timeout_s * 1000)}ms"])
        session.execute("select pg_advisory_lock(hashtext(?))", [f"canonry:{name}"])
        try:
            yield
        finally:
            session.execute("select pg_advisory_unlock(hashtext(?))", [f"canonry:{name}"])
            session.execute("select set_config('lock_timeout', '0', false)")
    finally:
        if own:
            session.close()


@contextmanager
def scratch_database(prefix: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres",
                     suffix: str | None = None) -> Iterator[str]:
    """A fresh database `<prefix>_<suffix or random>` on a server the caller administers (tests, benchmarks);
    yields its URL and drops it afterwards, closing what still holds it."""
    import uuid

    psycopg2 = _driver()
    name = f"{prefix}_{suffix or uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=CONNECT_TIMEOUT_S)
    admin.autocommit = True
    try:
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://{user}@{host}:{port}/{name}"
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
