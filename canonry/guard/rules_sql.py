"""Warehouse SQL rules (DuckDB and PostgreSQL): one read-only SELECT over canonical tables, bounded.

Same shape as the SOQL rules: a table of rule code -> severity, message, check; ``check_sql`` parses with
sqlglot's own dialect (``dialect="duckdb"`` or ``"postgres"``: the executor passes its warehouse's, see
:func:`canonical_tables.warehouse_dialect`), builds a :class:`SqlContext` once, runs the table and applies the rewrites.

Names resolve per scope (sqlglot's ``optimizer.scope``): a table name is a CTE only inside the scopes that
CTE is visible from, so a CTE named like a file cannot hide a replacement scan of that file elsewhere.
The cost rules (recursion, row generators, value sizes, join fan-out, collecting aggregates) live in
:mod:`canonry.guard.rules_sql_cost`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import Scope, traverse_scope

from canonry.guard.canonical_tables import SCHEMA, load_canonical_tables, load_table_sizes
from canonry.guard.rules_sql_cost import (
    check_join_fanout,
    check_large_aggregate,
    check_large_string,
    check_recursive,
    check_row_generator,
    func_name,
)
from canonry.guard.verdict import (
    Hit,
    Rule,
    Verdict,
    Violation,
    evaluate,
    friendly_parse_message,
    offset_of,
    unterminated_quote,
)

DIALECTS = ("duckdb", "postgres")

#: statements that touch files, network, extensions or settings (first keyword of a statement)
FORBIDDEN_STATEMENTS: frozenset[str] = frozenset(
    """COPY ATTACH DETACH INSTALL LOAD FORCE PRAGMA SET RESET CALL EXPORT IMPORT USE CHECKPOINT
    FORCE_CHECKPOINT VACUUM ANALYZE SUMMARIZE GRANT REVOKE LISTEN NOTIFY DO""".split()
)

#: functions that read files, reach the network, or read/change settings and the environment
FORBIDDEN_FUNCTIONS: frozenset[str] = frozenset(
    """READ_CSV READ_CSV_AUTO READ_PARQUET PARQUET_SCAN PARQUET_METADATA PARQUET_SCHEMA READ_JSON
    READ_JSON_AUTO READ_JSON_OBJECTS READ_NDJSON READ_NDJSON_AUTO READ_NDJSON_OBJECTS READ_TEXT READ_BLOB
    READ_XLSX ST_READ GLOB SNIFF_CSV ICEBERG_SCAN ICEBERG_METADATA DELTA_SCAN SQLITE_SCAN SQLITE_ATTACH
    POSTGRES_SCAN POSTGRES_ATTACH POSTGRES_QUERY POSTGRES_EXECUTE MYSQL_SCAN MYSQL_QUERY QUERY QUERY_TABLE
    GETENV CURRENT_SETTING SET_CONFIG LOAD_AWS_CREDENTIALS HTTPFS HTTP_GET HTTP_POST WHICH_SECRET
    PG_READ_FILE PG_READ_BINARY_FILE PG_LS_DIR PG_STAT_FILE PG_SLEEP PG_TERMINATE_BACKEND
    PG_CANCEL_BACKEND PG_RELOAD_CONF PG_ROTATE_LOGFILE LO_IMPORT LO_EXPORT DBLINK DBLINK_EXEC
    PG_FILE_WRITE PG_FILE_RENAME PG_FILE_UNLINK PG_LOGDIR_LS PG_CURRENT_LOGFILE PG_PROMOTE PG_SWITCH_WAL
    PG_CREATE_RESTORE_POINT PG_NOTIFY NEXTVAL SETVAL QUERY_TO_XML QUERY_TO_XMLSCHEMA
    QUERY_TO_XML_AND_XMLSCHEMA CURSOR_TO_XML TABLE_TO_XML DATABASE_TO_XML SCHEMA_TO_XML""".split()
)
#: name prefixes of the same families (pg_sleep_for, pg_advisory_lock, dblink_connect, lo_get, ...)
FORBIDDEN_PREFIXES: tuple[str, ...] = ("READ_", "DUCKDB_", "PRAGMA_", "PG_READ", "PG_LS", "SQLITE_",
                                       "POSTGRES_", "MYSQL_", "HTTP", "DBLINK", "LO_", "PG_SLEEP",
                                       "PG_ADVISORY", "PG_TRY_ADVISORY", "PG_STAT_FILE", "PG_FILE_")

#: table functions allowed in FROM (they generate rows, touch nothing)
ALLOWED_TABLE_FUNCTIONS: frozenset[str] = frozenset({"UNNEST", "GENERATE_SERIES", "EXPLODING_GENERATE_SERIES",
                                                     "RANGE"})

TABLE_NAME_RE = re.compile(r"^(ats|crm)_[a-z0-9_]+$")
PATH_LIKE_RE = re.compile(r"[./\\:]|\.(csv|parquet|json|ndjson|xlsx|db|duckdb|sqlite)$", re.IGNORECASE)


@dataclass(frozen=True)
class SqlPolicy:
    default_limit: int = 1000  # added when a query has no LIMIT
    max_limit: int = 10_000  # larger LIMITs are lowered to this
    wide_table_columns: int = 16  # SELECT * on a table with more columns is rewritten to its columns
    timeout_s: float = 30.0  # statement timeout for `canonry sql run`
    # cost bounds (rules_sql_cost)
    max_generated_rows: int = 1_000_000  # range()/generate_series() values
    max_value_bytes: int = 100_000  # one value built by repeat/lpad/rpad/space/printf widths
    max_join_rows: int = 50_000_000  # estimated rows out of the joins of one SELECT
    max_collected_rows: int = 1_000_000  # input rows of string_agg/array_agg/list/json_agg
    max_collected_bytes: int = 100_000_000  # ... and bytes, when a size function builds the values


# ---------------------------------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------------------------------


@dataclass
class SqlContext:
    sql: str
    dialect: str
    statements: list[exp.Expr]
    tables: dict[str, tuple[str, ...]]
    policy: SqlPolicy
    first_words: list[tuple[str, int]] = field(default_factory=list)  # (keyword, offset) per statement
    sizes: dict[str, int] = field(default_factory=dict)  # canonical table -> rows (empty: unknown)
    _scopes: list[Scope] | None = None
    _cte_refs: set[int] | None = None

    @property
    def scopes(self) -> list[Scope]:
        """sqlglot scopes of the read queries (built on first use: most queries never need them)."""
        if self._scopes is None:
            self._scopes = []
            for query in self.queries:
                try:
                    self._scopes.extend(traverse_scope(query))
                except Exception:  # sqlglot could not scope it: no scope, so no name is a CTE (strict)
                    continue
        return self._scopes

    def is_cte(self, table: exp.Table) -> bool:
        """Does ``table`` name a CTE visible in its own scope?"""
        if self._cte_refs is None:
            self._cte_refs = _cte_refs(self) if any(True for _ in self.of(exp.CTE)) else set()
        return id(table) in self._cte_refs

    @property
    def tree(self) -> exp.Expr:
        return self.statements[0]

    @property
    def queries(self) -> list[exp.Query]:
        """The statements the content rules read (DML/DDL is rejected outright by SQL_NOT_SELECT)."""
        return [s for s in self.statements if isinstance(s, exp.Query)]

    nodes: list[exp.Expr] = field(default_factory=list)  # every node of the read queries (one walk)

    def of(self, *kinds: type) -> Iterator[Any]:
        """Nodes of the given types inside the read queries, in walk order."""
        return (node for node in self.nodes if isinstance(node, kinds))


_func_name = func_name


def _is_forbidden_function(name: str) -> bool:
    return name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES)


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning when it falls back to a raw Command; the verdict already says it all."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _statement_heads(tokens: list) -> list[tuple[str, int]]:
    """First keyword (and its offset) of each ';'-separated statement, from the tokens."""
    heads: list[tuple[str, int]] = []
    expect = True
    for token in tokens:
        if token.token_type == sqlglot.TokenType.SEMICOLON:
            expect = True
        elif expect:
            heads.append((token.text.upper(), token.start))
            expect = False
    return heads


# ---------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------


def check_multiple(ctx: SqlContext) -> Iterator[Hit]:
    if len(ctx.statements) > 1:
        yield Hit({"count": len(ctx.statements)}, ctx.statements[1])


def check_forbidden_statement(ctx: SqlContext) -> Iterator[Hit]:
    for word, offset in ctx.first_words:
        if word in FORBIDDEN_STATEMENTS:
            yield Hit({"statement": word}, _Offset(offset))


def check_not_select(ctx: SqlContext) -> Iterator[Hit]:
    for index, statement in enumerate(ctx.statements):
        word = ctx.first_words[index][0] if index < len(ctx.first_words) else ""
        if word in FORBIDDEN_STATEMENTS:
            continue  # reported as SQL_FORBIDDEN_STATEMENT
        if not isinstance(statement, exp.Query):
            yield Hit({"what": f"{word or statement.key.upper()} is not a SELECT"}, statement)
            continue
        for node in statement.walk():
            if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop,
                                 exp.Alter, exp.Command, exp.TruncateTable)):
                yield Hit({"what": f"it contains {node.key.upper()}"}, node)
            elif isinstance(node, exp.Select) and node.args.get("into"):
                yield Hit({"what": "SELECT INTO creates a table"}, node.args["into"])
            elif isinstance(node, exp.Select) and node.args.get("locks"):
                yield Hit({"what": "FOR UPDATE/SHARE takes row locks"}, node)


def check_external_access(ctx: SqlContext) -> Iterator[Hit]:
    for node in ctx.of(exp.Func, exp.Table):
        if isinstance(node, exp.Func) and _is_forbidden_function(_func_name(node)):
            yield Hit({"what": f"{_func_name(node).lower()}()"}, node)
        elif (
            isinstance(node, exp.Table)
            and isinstance(node.this, exp.Identifier)
            and not node.args.get("db")
            and not ctx.is_cte(node)
            and PATH_LIKE_RE.search(node.name)
        ):
            yield Hit({"what": f"the file or URL '{node.name}'"}, node)


def _table_problem(ctx: SqlContext, table: exp.Table) -> str | None:
    """Why a table reference is not a canonical table (None when it is one, or a CTE)."""
    name, schema = table.name.lower(), table.text("db").lower()
    if table.args.get("catalog"):
        return f"{table.sql(ctx.dialect)} names a database; use {SCHEMA}.<table>"
    if not schema:
        if ctx.is_cte(table) or name in ctx.tables or PATH_LIKE_RE.search(name):
            return None  # CTE; unqualified canonical (SQL_UNQUALIFIED_TABLE); file (external access)
        return f"{name} is not a canonical table"
    if schema != SCHEMA:
        return f"schema {schema} is not available to queries; only {SCHEMA}.ats_*/crm_* tables are"
    if not TABLE_NAME_RE.match(name):
        return f"{SCHEMA}.{name} is not an ats_* or crm_* table"
    if name not in ctx.tables:
        return f"{SCHEMA}.{name} does not exist"
    return None


def _tables(ctx: SqlContext) -> Iterator[exp.Table]:
    """Tables the queries read (not the target of SELECT INTO, which SQL_NOT_SELECT reports)."""
    for table in ctx.of(exp.Table):
        if isinstance(table.this, exp.Identifier) and not table.find_ancestor(exp.Into):
            yield table


def check_non_canonical(ctx: SqlContext) -> Iterator[Hit]:
    for table in _tables(ctx):
        problem = _table_problem(ctx, table)
        if problem:
            yield Hit({"reason": problem}, table)
    for node in ctx.of(exp.Table):
        if isinstance(node.this, exp.Func):
            name = _func_name(node.this)
            if name not in ALLOWED_TABLE_FUNCTIONS and not _is_forbidden_function(name):
                yield Hit({"reason": f"{name.lower()}() is not a canonical table"}, node)


def check_unqualified(ctx: SqlContext) -> Iterator[Hit]:
    for table in _tables(ctx):
        name = table.name.lower()
        if not table.text("db") and name in ctx.tables and not ctx.is_cte(table):
            yield Hit({"table": name, "schema": SCHEMA}, table,
                      lambda _tree, t=table: t.set("db", exp.to_identifier(SCHEMA)))


def _sources(select: exp.Select, ctx: SqlContext) -> list[tuple[str, exp.Expr]]:
    """(alias or name, source node) for the FROM item and every join of one SELECT."""
    items = []
    from_ = select.args.get("from_")
    if from_:
        items.append(from_.this)
    items.extend(join.this for join in select.args.get("joins") or [])
    return [((item.alias_or_name or "").lower(), item) for item in items]


def _columns_of(source: exp.Expr, ctx: SqlContext) -> tuple[str, ...] | None:
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        name = source.name.lower()
        if name in ctx.tables and source.text("db").lower() in ("", SCHEMA) and not ctx.is_cte(source):
            return ctx.tables[name]
    return None


def check_select_star(ctx: SqlContext) -> Iterator[Hit]:
    wide = ctx.policy.wide_table_columns
    for select in ctx.of(exp.Select):
        sources = _sources(select, ctx)
        for projection in select.expressions:
            star_table = None
            if isinstance(projection, exp.Star):
                targets = sources
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                star_table = projection.table.lower()
                targets = [s for s in sources if s[0] == star_table]
            else:
                continue
            columns = [(alias, _columns_of(node, ctx)) for alias, node in targets]
            known = [(alias, cols) for alias, cols in columns if cols is not None]
            if not any(len(cols) > wide for _, cols in known):
                continue
            star = projection if isinstance(projection, exp.Star) else projection.this
            can_fix = bool(targets) and len(known) == len(columns) and not any(star.args.values())
            qualify = len(sources) > 1 or star_table is not None
            names = ", ".join(node.name for _, node in targets if _columns_of(node, ctx))
            fix = None
            if can_fix:
                replacement = [
                    exp.column(col, table=alias if qualify else None) for alias, cols in known for col in cols
                ]
                fix = _replace_projection(select, projection, replacement)
            yield Hit({"tables": names, "wide": wide}, projection, fix)


def _replace_projection(select: exp.Select, old: exp.Expr, new: list[exp.Expr]):
    def fix(_tree: exp.Expr) -> None:
        projections = []
        for projection in select.expressions:
            projections.extend(new if projection is old else [projection])
        select.set("expressions", projections)

    return fix


def _column_sources(column: exp.Column, sources: list[tuple[str, exp.Expr]], ctx: SqlContext) -> set[str]:
    if column.table:
        return {column.table.lower()}
    return {alias for alias, node in sources if column.name.lower() in (_columns_of(node, ctx) or ())}


def _links(condition: exp.Expr | None, alias: str, sources, ctx: SqlContext) -> bool:
    """Does ``condition`` compare a column of ``alias`` with a column of another source?"""
    if condition is None:
        return False
    for node in condition.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ):
        left = set().union(*[_column_sources(c, sources, ctx) for c in node.this.find_all(exp.Column)] or [set()])
        right = set().union(*[_column_sources(c, sources, ctx) for c in node.expression.find_all(exp.Column)] or [set()])
        if (alias in left and right - {alias}) or (alias in right and left - {alias}):
            return True
    return False


def check_cross_join(ctx: SqlContext) -> Iterator[Hit]:
    for select in ctx.of(exp.Select):
        sources = _sources(select, ctx)
        where = select.args.get("where")
        for join in select.args.get("joins") or []:
            target = join.this
            if isinstance(target, (exp.Lateral, exp.Unnest)) or join.args.get("using"):
                continue
            if join.args.get("method", "").upper() == "NATURAL":
                continue
            if isinstance(target, exp.Table) and isinstance(target.this, exp.Func):
                continue  # table function (unnest, generate_series): sized by SQL_ROW_GENERATOR/FANOUT
            alias = (target.alias_or_name or "").lower()
            if _links(join.args.get("on"), alias, sources, ctx) or _links(
                where.this if where else None, alias, sources, ctx
            ):
                continue
            yield Hit({"table": alias}, join)


def _limit_node(query: exp.Expr) -> exp.Expr | None:
    return query.args.get("limit")


def _limit_count(query: exp.Expr) -> tuple[bool, int | None]:
    """(has a limit, its integer value or None when not a literal)."""
    limit = _limit_node(query)
    if limit is None:
        return False, None
    value = limit.args.get("count") if isinstance(limit, exp.Fetch) else limit.expression
    if isinstance(value, exp.Literal) and value.is_int:
        return True, int(value.name)
    return True, None


def _single_row(query: exp.Expr) -> bool:
    if not isinstance(query, exp.Select) or query.args.get("group"):
        return False
    if not query.args.get("from_"):
        return True  # SELECT 1, SELECT now(): one row
    def aggregate(node: exp.Expr) -> bool:
        node = node.unalias()
        return isinstance(node.this if isinstance(node, exp.Filter) else node, exp.AggFunc)

    return bool(query.expressions) and all(aggregate(p) for p in query.expressions)


def _set_limit(query: exp.Expr, value: int) -> None:
    query.set("limit", exp.Limit(expression=exp.Literal.number(value)))


def check_no_limit(ctx: SqlContext) -> Iterator[Hit]:
    tree = ctx.tree
    if len(ctx.statements) == 1 and isinstance(tree, exp.Query) and not _limit_count(tree)[0]:
        if not _single_row(tree):
            value = ctx.policy.default_limit
            yield Hit({"limit": value}, None, lambda _tree: _set_limit(tree, value))


def check_limit_cap(ctx: SqlContext) -> Iterator[Hit]:
    tree = ctx.tree
    if len(ctx.statements) != 1 or not isinstance(tree, exp.Query):
        return
    has, value = _limit_count(tree)
    cap = ctx.policy.max_limit
    if has and (value is None or value > cap):
        shown = value if value is not None else _limit_node(tree).sql(ctx.dialect)
        yield Hit({"limit": shown, "cap": cap}, _limit_node(tree), lambda _tree: _set_limit(tree, cap))


# ---------------------------------------------------------------------------------------------------
# Rule table
# ---------------------------------------------------------------------------------------------------

SQL_RULES: tuple[Rule, ...] = (
    Rule("SQL_PARSE_ERROR", "error", "{message}", None),
    Rule("SQL_MULTIPLE_STATEMENTS", "error",
         "Found {count} statements; send exactly one SELECT.", check_multiple),
    Rule("SQL_FORBIDDEN_STATEMENT", "error",
         "{statement} touches files, extensions, the network or settings and is never allowed.",
         check_forbidden_statement),
    Rule("SQL_NOT_SELECT", "error",
         "Only read-only SELECT queries are allowed: {what}.", check_not_select),
    Rule("SQL_EXTERNAL_ACCESS", "error",
         "{what} reads files, the network, settings or the environment; query canonical tables instead.",
         check_external_access),
    Rule("SQL_NON_CANONICAL_TABLE", "error",
         "Only canonical tables can be queried: {reason}.", check_non_canonical),
    Rule("SQL_UNQUALIFIED_TABLE", "warning",
         "Table {table} is not schema-qualified.", check_unqualified, fix_note="Qualified as {schema}.{table}."),
    Rule("SQL_CROSS_JOIN", "error",
         "The join with {table} has no join condition, so it pairs every row with every row (a cross "
         "join). Add ON <key> = <key>.", check_cross_join),
    Rule("SQL_RECURSIVE_QUERY", "error",
         "WITH RECURSIVE repeats until a condition the guard cannot bound (a runaway recursion fills memory); "
         "write the query without recursion.", check_recursive),
    Rule("SQL_ROW_GENERATOR", "error",
         "{what}: at most {cap:,} generated values are allowed, with constant bounds.", check_row_generator),
    Rule("SQL_LARGE_STRING", "error",
         "{what}: one value may be at most {cap:,} bytes, with a constant size.", check_large_string),
    Rule("SQL_JOIN_FANOUT", "error",
         "The joins of {tables} can produce about {rows} rows (estimated from table sizes and generated rows); the cap is "
         "{cap}. Join on a key (e.g. a.account_id = c.account_id against the table whose id it is) or "
         "filter first.", check_join_fanout),
    Rule("SQL_LARGE_AGGREGATE", "error",
         "{function}() would collect about {what} into values (the cap is {cap}); aggregate with "
         "count/sum/min/max, filter, or group it finer.", check_large_aggregate),
    Rule("SQL_SELECT_STAR", "warning",
         "SELECT * on a wide table ({tables}: more than {wide} columns) returns columns you may not need "
         "and breaks when the schema grows.", check_select_star, fix_note="Expanded to the column list."),
    Rule("SQL_NO_LIMIT", "warning", "The query has no LIMIT, so it can return any number of rows.",
         check_no_limit, fix_note="Added LIMIT {limit}."),
    Rule("SQL_LIMIT_TOO_HIGH", "warning", "LIMIT {limit} is above the cap of {cap} rows.", check_limit_cap,
         fix_note="Lowered to LIMIT {cap}."),
)

RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in SQL_RULES}


def _cte_refs(ctx: SqlContext) -> set[int]:
    """id() of the Table nodes that name a CTE visible in their scope."""
    refs = {
        id(table)
        for scope in ctx.scopes
        for table in scope.tables
        if not table.args.get("db") and isinstance(scope.sources.get(table.alias_or_name), Scope)
    }
    # CTEs over DELETE/INSERT ... RETURNING get no scope; SQL_NOT_SELECT rejects them anyway
    dml = {cte.alias.lower() for cte in ctx.of(exp.CTE) if not isinstance(cte.this, exp.Query)}
    if dml:
        refs.update(id(t) for t in ctx.of(exp.Table) if not t.args.get("db") and t.name.lower() in dml)
    return refs


class _Offset:
    """A bare character offset standing in for a node (statements sqlglot could not parse)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset


def _position(node: object) -> int | None:
    if isinstance(node, _Offset):
        return node.offset
    from canonry.guard.verdict import node_position

    return node_position(node)  # type: ignore[arg-type]


def _parse_error(query: str, message: str, position: int | None, dialect: str) -> Verdict:
    rule = RULES_BY_CODE["SQL_PARSE_ERROR"]
    return Verdict("reject", (Violation(rule.code, rule.severity, message, position),), query, None, "sql")


def check_sql(
    query: str,
    dialect: str = "duckdb",
    tables: dict[str, tuple[str, ...]] | None = None,
    policy: SqlPolicy | None = None,
    sizes: Mapping[str, int] | None = None,
) -> Verdict:
    """Guard one warehouse query in ``dialect`` (duckdb | postgres).

    ``tables`` (table -> columns) and ``sizes`` (table -> rows) default to the live warehouse's; given
    ``tables`` without ``sizes``, the size-based cost rules have no estimate and stay silent.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
    policy = policy or SqlPolicy()
    if tables is None:
        tables = load_canonical_tables()
        sizes = load_table_sizes() if sizes is None else sizes
    if not query.strip():
        return _parse_error(query, "The query is empty", 0, dialect)
    sql_dialect = sqlglot.Dialect.get_or_raise(dialect)
    try:
        tokens = sql_dialect.tokenize(query)
    except (TokenError, Exception) as error:  # tokenizer on hostile input: report, never crash
        start = unterminated_quote(query, backslash_escapes=False)
        if start is not None:
            return _parse_error(query, "Unterminated string: a ' is never closed", start, dialect)
        return _parse_error(query, f"Could not read the query: {str(error).splitlines()[0]}", None, dialect)
    heads = _statement_heads(tokens)

    try:
        with _quiet_sqlglot():
            statements = [s for s in sql_dialect.parser().parse(tokens, query) if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        if any(word in FORBIDDEN_STATEMENTS for word, _ in heads):
            statements = []  # unparseable but plainly forbidden (EXPORT DATABASE ...): say so
        else:
            line, col = first.get("line"), first.get("col")
            message = f"{friendly_parse_message(first.get('description') or 'Invalid SQL')} (line {line}, column {col})"
            return _parse_error(query, message, offset_of(query, line, col), dialect)
    except Exception as error:  # sqlglot internals on hostile input
        return _parse_error(query, f"Could not parse the query: {str(error).splitlines()[0]}", None, dialect)

    if not statements:
        rule = RULES_BY_CODE["SQL_FORBIDDEN_STATEMENT"]
        hits = [Hit({"statement": w}, _Offset(o)) for w, o in heads if w in FORBIDDEN_STATEMENTS]
        violations = tuple(rule.violation(h, h.node.offset, False) for h in hits)
        if not violations:
            return _parse_error(query, "No statement found", 0, dialect)
        return Verdict("reject", violations, query, None, "sql")

    ctx = SqlContext(query, dialect, statements, tables, policy, heads, dict(sizes or {}))
    ctx.nodes = [node for q in ctx.queries for node in q.walk(bfs=False)]
    empty = next((n for n in ctx.of(exp.Select) if not n.expressions), None)
    if empty is not None:  # sqlglot accepts a bare SELECT
        position = _position(empty)
        return _parse_error(query, "Incomplete SELECT: it selects nothing", position or 0, dialect)
    return evaluate(SQL_RULES, ctx, statements[0], _position, lambda tree: tree.sql(dialect=dialect), query, "sql")
