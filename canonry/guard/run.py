"""Execute a guarded query against the DuckDB warehouse: read-only, no external access, bounded.

The guard's parse tree is the first line of defence; the executor is the second, and holds even when a
query reaches it unguarded:

* the connection is opened ``read_only`` with ``enable_external_access=false`` and ``lock_configuration=true``
  (the query cannot read files or turn a setting back), DuckDB's ``memory_limit`` and ``threads`` set, and
  no spilling to disk (``max_temp_directory_size=0``);
* a timer thread calls DuckDB's ``interrupt()`` when ``timeout_s`` is reached;
* the result is read as Arrow batches and stops at ``max_rows`` rows or ``max_bytes`` bytes;
* without a caller-given connection the query runs in a forked child process whose data segment is capped
  (``RLIMIT_DATA``: DuckDB does not count every allocation, e.g. one 1.5 GB ``repeat()`` string, against its
  ``memory_limit``) and which is killed one second after the timeout if the interrupt did not stop it.

Each limit that is hit raises its own :class:`QueryLimitExceeded` subclass with a message that names the
limit and the option that sets it.

PostgreSQL: the query runs inside a ``READ ONLY`` transaction with a ``statement_timeout`` (set for that
transaction only), which is rolled back afterwards whatever happened: a write, a ``COPY``, a ``set role``
that slipped past the guard fails in the server, and nothing the query did outlives it. The result is cut
at ``max_rows`` rows there too.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SANDBOX_CONFIG: dict[str, Any] = {"enable_external_access": False, "lock_configuration": True,
                                  "max_temp_directory_size": "0GB"}
RESULT_BATCH_ROWS = 2048
KILL_GRACE_S = 1.0  # after the timeout, how long the interrupt may take before the child is killed
PROCESS_HEADROOM_BYTES = 256 * 1024 * 1024  # data segment beyond DuckDB's limit (Python, Arrow, result)
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KIB|MB|MIB|GB|GIB|TB|TIB)\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1000, "KIB": 1024, "MB": 1000**2, "MIB": 1024**2, "GB": 1000**3, "GIB": 1024**3,
          "TB": 1000**4, "TIB": 1024**4}


class QueryLimitExceeded(RuntimeError):
    """A query hit one of the executor's limits (time, memory, result size)."""


class QueryTimeout(QueryLimitExceeded):
    pass


class QueryOutOfMemory(QueryLimitExceeded):
    pass


class ResultTooLarge(QueryLimitExceeded):
    pass


class QueryFailed(RuntimeError):
    """The database rejected the query (unknown column, bad cast, ...); the message is its own."""


class WarehouseUnavailable(RuntimeError):
    pass


class WarehouseLocked(WarehouseUnavailable):
    """Another process holds the DuckDB file for writing (a sync loading, a build)."""


def parse_size(text: str) -> int:
    """'1GB' / '512 MiB' -> bytes; ValueError with the accepted forms otherwise."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write a number and a unit, e.g. 512MB or 2GB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


@dataclass(frozen=True)
class ExecutionLimits:
    """The executor's bounds (``canonry sql run --timeout/--memory-limit/--threads/--max-rows/--max-bytes``)."""

    timeout_s: float = 30.0
    memory_limit: str = "1GB"  # DuckDB memory_limit; the child process may use this plus headroom
    threads: int = 2
    max_rows: int = 10_000
    max_bytes: int = 64 * 1024 * 1024  # Arrow bytes of the result

    def __post_init__(self) -> None:
        problems = []
        if self.timeout_s <= 0:
            problems.append(f"timeout must be above 0 s, not {self.timeout_s}")
        try:
            if parse_size(self.memory_limit) < 16 * 1024 * 1024:
                problems.append(f"memory limit must be at least 16MB, not {self.memory_limit}")
        except ValueError as error:
            problems.append(f"memory limit: {error}")
        if self.threads < 1:
            problems.append(f"threads must be at least 1, not {self.threads}")
        if self.max_rows < 1 or self.max_bytes < 1024:
            problems.append("max rows must be at least 1 and max bytes at least 1024")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def duckdb_config(self) -> dict[str, Any]:
        return {**SANDBOX_CONFIG, "memory_limit": self.memory_limit, "threads": self.threads}


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    elapsed_ms: float


def open_sandboxed(limits: ExecutionLimits | None = None, path: Path | None = None) -> Any:
    """A read-only, no-external-access, memory- and thread-limited DuckDB connection to the warehouse (or
    to `path`, a consistent copy of it: `readable_copy`)."""
    import duckdb

    from canonry.warehouse import postgres_url, warehouse_path

    limits = limits or ExecutionLimits()
    if postgres_url():
        return open_postgres()
    path = path or warehouse_path()
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path}; load data first (e.g. `canonry demo`)")
    try:
        conn = duckdb.connect(str(path), read_only=True, config=limits.duckdb_config)
    except duckdb.Error as error:
        if _locked(error):
            raise WarehouseLocked(str(error)) from None
        raise WarehouseUnavailable(f"cannot open the warehouse read-only: {error}") from None
    for name, value in SESSION_VARIABLES.items():  # e.g. the masking key the masked views read
        conn.execute(f"set variable {name} = ?", [value])
    return conn


# Session variables every sandboxed DuckDB connection gets (set by the caller before `run_query`; a forked
# child inherits them): canonry/governance/masking.py puts the masking key here, never into the warehouse.
SESSION_VARIABLES: dict[str, str] = {}


def run_query(query: str, timeout_s: float | None = None, connection: Any = None,
              limits: ExecutionLimits | None = None) -> QueryResult:
    """Run an already guarded query within ``limits`` (``timeout_s`` overrides its timeout).

    With ``connection`` the query runs on it in this process (the caller owns its settings); without, in a
    forked child on a sandboxed connection (see the module docstring). Raises a :class:`QueryLimitExceeded`
    subclass when a limit is hit, :class:`QueryFailed` when the database rejects the query.
    """
    limits = limits or ExecutionLimits()
    if timeout_s is not None:
        limits = ExecutionLimits(timeout_s, limits.memory_limit, limits.threads, limits.max_rows, limits.max_bytes)
    if connection is not None and getattr(connection, "dialect", "duckdb") == "postgres":
        return run_postgres(query, limits, connection)
    if connection is not None:
        return execute_bounded(connection, query, limits)
    from canonry.warehouse import postgres_url

    if postgres_url():
        conn = open_postgres()
        try:
            return run_postgres(query, limits, conn)
        finally:
            conn.close()
    copy = None
    try:
        open_sandboxed(limits).close()  # configuration and availability errors surface here, in the parent
    except WarehouseLocked:
        copy = readable_copy()
    try:
        return _run_isolated(query, limits, copy)
    finally:
        if copy is not None:
            from canonry.warehouse_snapshot import discard

            discard(copy)


def _locked(error: Exception) -> bool:
    """DuckDB's answer when another process holds the file for writing."""
    return "lock" in str(error).lower()


# Where `readable_copy` puts its copies (under the data dir, one per process: removed after the query).
COPY_DIRECTORY = "sql_snapshots"


def readable_copy(within_seconds: float = 10.0) -> Path:
    """While another process writes the DuckDB warehouse (a sync loading, a build), queries read a
    consistent copy of it made now (canonry/warehouse_snapshot.py): the state after the writer's last
    commit. Says so on stderr, naming the writer; WarehouseUnavailable when no consistent copy could be made."""
    from canonry.warehouse import data_dir, warehouse_path
    from canonry.warehouse_lock import describe, lock_holder
    from canonry.warehouse_snapshot import consistent_copy

    target = data_dir() / COPY_DIRECTORY / f"warehouse-{os.getpid()}.duckdb"
    try:
        consistent_copy(warehouse_path(), target, within_seconds)
    except (TimeoutError, FileNotFoundError) as error:
        raise WarehouseUnavailable(f"the warehouse is being written by {describe(lock_holder())} and no "
                                   f"consistent copy could be read ({error}); try again when it finishes") from None
    print(f"note: the warehouse is being written by {describe(lock_holder())}; this answer reads a consistent "
          f"copy taken at {time.strftime('%H:%M:%S')} (the state after its last commit)", file=sys.stderr)
    return target


def open_postgres() -> Any:
    """A PostgreSQL connection in a transaction of its own (not autocommit), for `run_postgres`."""
    from canonry.errors import CanonryError
    from canonry.warehouse import connect

    try:
        conn = connect()
    except CanonryError as error:
        raise WarehouseUnavailable(str(error)) from None
    conn.raw.autocommit = False
    return conn


def run_postgres(query: str, limits: ExecutionLimits, conn: Any) -> QueryResult:
    """Run a guarded query on PostgreSQL in a read-only transaction with a statement timeout, rolled back."""
    from psycopg2 import errors

    started = time.perf_counter()
    cursor = conn.raw.cursor()
    try:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{max(1, int(limits.timeout_s * 1000))}ms"])
        try:
            cursor.execute(query)
        except errors.QueryCanceled:
            raise QueryTimeout(_timeout_message(limits)) from None
        columns = [d[0] for d in cursor.description or []]
        rows = [tuple(r) for r in cursor.fetchmany(limits.max_rows + 1)] if cursor.description else []
        if len(rows) > limits.max_rows:
            raise ResultTooLarge(f"the result has more than {limits.max_rows:,} rows (the cap); add a "
                                 "LIMIT or raise it with --max-rows")
        return QueryResult(columns, rows, (time.perf_counter() - started) * 1000)
    finally:
        conn.raw.rollback()


def execute_bounded(conn: Any, query: str, limits: ExecutionLimits) -> QueryResult:
    """Run ``query`` on ``conn`` in this thread: interrupted at the timeout, the result capped."""
    import duckdb

    started = time.perf_counter()
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        conn.interrupt()

    timer = threading.Timer(limits.timeout_s, interrupt)
    timer.daemon = True
    timer.start()
    try:
        relation = conn.sql(query)  # streams (execute() would materialise the whole result first)
        columns = list(relation.columns) if relation is not None else []
        batches, rows, size = [], 0, 0
        if relation is not None:
            for batch in relation.to_arrow_reader(RESULT_BATCH_ROWS):
                rows, size = rows + batch.num_rows, size + batch.nbytes
                if rows > limits.max_rows:
                    raise ResultTooLarge(f"the result has more than {limits.max_rows:,} rows (the cap); add a "
                                         "LIMIT or raise it with --max-rows")
                if size > limits.max_bytes:
                    raise ResultTooLarge(f"the result is larger than {_mb(limits.max_bytes)} (the cap); select "
                                         "fewer or narrower columns, or raise it with --max-bytes")
                batches.append(batch)
    except duckdb.InterruptException:
        raise QueryTimeout(_timeout_message(limits)) from None
    except (duckdb.OutOfMemoryException, MemoryError):
        if fired.is_set():
            raise QueryTimeout(_timeout_message(limits)) from None
        raise QueryOutOfMemory(_memory_message(limits)) from None
    except duckdb.Error as error:
        if fired.is_set():
            raise QueryTimeout(_timeout_message(limits)) from None
        raise QueryFailed(str(error).splitlines()[0]) from None
    finally:
        timer.cancel()
    if fired.is_set():
        raise QueryTimeout(_timeout_message(limits))
    return QueryResult(columns, _rows(batches), (time.perf_counter() - started) * 1000)


def _rows(batches: list) -> list[tuple]:
    """Arrow batches -> row tuples, one column at a time (no per-value Python work beyond to_pylist)."""
    rows: list[tuple] = []
    for batch in batches:
        rows.extend(zip(*(column.to_pylist() for column in batch.columns), strict=True))
    return rows


def _timeout_message(limits: ExecutionLimits) -> str:
    return f"the query ran longer than {limits.timeout_s:g} s and was stopped (raise it with --timeout)"


def _memory_message(limits: ExecutionLimits) -> str:
    return (f"the query needed more memory than its limit ({limits.memory_limit}) and was stopped; filter or "
            "aggregate earlier, or raise it with --memory-limit")


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:g} MB"


# ---------------------------------------------------------------------------------------------------
# Isolation: a forked child with a capped data segment, killed if the interrupt does not stop it
# ---------------------------------------------------------------------------------------------------

_ERRORS: dict[str, type[Exception]] = {cls.__name__: cls for cls in (
    QueryTimeout, QueryOutOfMemory, ResultTooLarge, QueryFailed, WarehouseUnavailable, WarehouseLocked)}


def _data_segment_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(query: str, limits: ExecutionLimits, sender: Any, path: Path | None = None) -> None:
    try:
        conn = open_sandboxed(limits, path)
        cap = _data_segment_bytes() + 2 * parse_size(limits.memory_limit) + PROCESS_HEADROOM_BYTES
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
        sender.send(("ok", execute_bounded(conn, query, limits)))
    except BaseException as error:  # handed to the parent, which raises it
        kind = type(error).__name__ if type(error).__name__ in _ERRORS else "QueryFailed"
        if isinstance(error, MemoryError):
            kind, error = "QueryOutOfMemory", QueryOutOfMemory(_memory_message(limits))
        sender.send((kind, str(error).splitlines()[0] if str(error) else kind))
    finally:
        sender.close()
        os._exit(0)  # no atexit/finalizers of the parent's state in the fork


def _run_isolated(query: str, limits: ExecutionLimits, path: Path | None = None) -> QueryResult:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(query, limits, sender, path), name="canonry-sql-run", daemon=True)
    started = time.perf_counter()
    child.start()
    sender.close()
    try:
        if not receiver.poll(limits.timeout_s + KILL_GRACE_S):
            child.kill()
            raise QueryTimeout(_timeout_message(limits))
        try:
            kind, payload = receiver.recv()
        except EOFError:  # the child died without answering (killed by the kernel on memory)
            raise QueryOutOfMemory(_memory_message(limits)) from None
    finally:
        child.join(KILL_GRACE_S)
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
    if kind != "ok":
        raise _ERRORS[kind](payload)
    return QueryResult(payload.columns, payload.rows, (time.perf_counter() - started) * 1000)
