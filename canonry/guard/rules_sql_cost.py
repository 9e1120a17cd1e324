"""Cost rules of the warehouse SQL guard: bound what one query can make the database generate.

Safety rules (``rules_sql``) say *what* a query may touch; these say *how much* work it may ask for.
Each is a small check over the :class:`~canonry.guard.rules_sql.SqlContext`:

* ``SQL_RECURSIVE_QUERY``  - ``WITH RECURSIVE``: the guard cannot bound how often it repeats.
* ``SQL_ROW_GENERATOR``    - ``range()`` / ``generate_series()`` (in FROM or as a list) generating more than
  ``max_generated_rows`` values, or with bounds that are not constants.
* ``SQL_LARGE_STRING``     - ``repeat`` / ``lpad`` / ``rpad`` / ``space`` / ``list_resize`` / ``printf`` widths
  building a value above ``max_value_bytes``, or with a size that is not a constant.
* ``SQL_JOIN_FANOUT``      - the joins of one SELECT can produce more than ``max_join_rows`` rows, estimated from
  the table sizes the warehouse reports (a join on a source's unique key keeps the row count; any other join
  multiplies it, an upper bound). Without sizes there is no estimate and the rule stays silent.
* ``SQL_LARGE_AGGREGATE``  - ``string_agg`` / ``array_agg`` / ``list`` / ``json_agg`` ... collecting more than
  ``max_collected_rows`` input rows into values (the memory attack behind a 5 GB ``string_agg``).

The executor (:mod:`canonry.guard.run`) enforces memory, thread, time and result-size limits as the second
line of defence; these rules refuse the obvious attacks before they reach it, with a message that says why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from canonry.canonical import TABLES, id_column
from canonry.guard.verdict import Hit, node_position

if TYPE_CHECKING:
    from canonry.guard.rules_sql import SqlContext

#: aggregates that collect their input into one value (a string, list or JSON document)
COLLECTING_AGGREGATES: frozenset[str] = frozenset(
    """GROUP_CONCAT STRING_AGG LISTAGG ARRAY_AGG LIST JSON_GROUP_ARRAY JSON_GROUP_OBJECT JSON_AGG JSONB_AGG
    J_S_O_N_ARRAY_AGG JSON_OBJECT_AGG JSONB_OBJECT_AGG XMLAGG HISTOGRAM STRING_AGG_DISTINCT""".split()
)

#: size functions: name -> index of the size argument among the call's arguments (see _size_args)
SIZE_FUNCTIONS: frozenset[str] = frozenset({"REPEAT", "PAD", "LPAD", "RPAD", "SPACE", "LIST_RESIZE",
                                             "ARRAY_RESIZE", "ARRAY_FILL", "PRINTF", "FORMAT", "BAR"})
#: node types a size function parses to (Anonymous: printf, list_resize, array_fill, bar ... by name)
SIZE_NODE_TYPES: tuple[type, ...] = (exp.Repeat, exp.Pad, exp.Space, exp.Format, exp.Anonymous)
ASSUMED_VALUE_BYTES = 256  # width of a non-literal value repeated by repeat()
PRINTF_WIDTH_RE = re.compile(r"%[-+ #0]*(\d+)|\{:[^}]*?(\d+)[^}]*\}")
INTERVAL_SECONDS: dict[str, float] = {
    "MICROSECOND": 1e-6, "MILLISECOND": 1e-3, "SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400,
    "WEEK": 604800, "MONTH": 28 * 86400, "QUARTER": 90 * 86400, "YEAR": 365 * 86400,
}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL_BEFORE_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*(?:DISTINCT\s+|ALL\s+)?$", re.IGNORECASE)
_INTERVAL_TEXT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+?)s?\s*$")


def func_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).upper()


# ---------------------------------------------------------------------------------------------------
# Constants: literal arithmetic, dates and intervals folded to numbers
# ---------------------------------------------------------------------------------------------------

_BINARY = {exp.Add: lambda a, b: a + b, exp.Sub: lambda a, b: a - b, exp.Mul: lambda a, b: a * b,
           exp.Div: lambda a, b: a / b if b else math.inf, exp.Pow: lambda a, b: a ** min(b, 400),
           exp.Mod: lambda a, b: a % b if b else math.inf}


def constant(node: exp.Expr | None) -> float | None:
    """The numeric value of a constant expression (literals, + - * / ^ %, casts, parentheses), else None."""
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.name)
        except ValueError:
            return None
    if isinstance(node, (exp.Paren, exp.Cast, exp.TryCast)) and not isinstance(node, exp.Interval):
        inner = constant(node.this)
        if inner is not None or not isinstance(node, exp.Cast):
            return inner
        return _timestamp(node)
    if isinstance(node, exp.Neg):
        inner = constant(node.this)
        return None if inner is None else -inner
    operation = _BINARY.get(type(node))
    if operation:
        left, right = constant(node.this), constant(node.expression)
        if left is None or right is None:
            return None
        try:
            return float(operation(left, right))
        except (OverflowError, ZeroDivisionError, ValueError):
            return math.inf
    if isinstance(node, exp.Interval):
        return _interval_seconds(node)
    return None


def _timestamp(node: exp.Cast) -> float | None:
    """DATE '2024-01-01' / '2024-01-01'::timestamp as seconds since the epoch."""
    if isinstance(node.this, exp.Literal) and node.this.is_string:
        try:
            return datetime.fromisoformat(node.this.name.strip()).timestamp()
        except ValueError:
            return None
    return None


def _interval_seconds(node: exp.Interval) -> float | None:
    unit = node.text("unit").upper()
    value = node.this
    if not unit and isinstance(value, exp.Literal) and value.is_string:  # INTERVAL '1 day'
        match = _INTERVAL_TEXT_RE.match(value.name)
        if not match:
            return None
        amount, unit = float(match.group(1)), match.group(2).upper()
    else:
        text = value.name if isinstance(value, exp.Literal) else None
        try:
            amount = float(text) if text is not None else None
        except ValueError:
            amount = None
    unit = unit.rstrip("S") if unit not in INTERVAL_SECONDS else unit
    if amount is None or unit not in INTERVAL_SECONDS:
        return None
    return amount * INTERVAL_SECONDS[unit]


def series_length(node: exp.GenerateSeries) -> float | None:
    """How many values range()/generate_series() produce, or None when the bounds are not constants."""
    start, end = constant(node.args.get("start")), constant(node.args.get("end"))
    step_node = node.args.get("step")
    step = 1.0 if step_node is None else constant(step_node)
    if start is None or end is None or step is None:
        return None
    if step == 0:
        return math.inf
    count = (end - start) / step
    return max(0.0, math.floor(count) + (0 if node.args.get("is_end_exclusive") else 1))


def _anonymous_series_length(node: exp.Anonymous) -> float | None:
    args = node.expressions
    if func_name(node) == "RANGE" and len(args) == 1:
        end = constant(args[0])
        return None if end is None else max(0.0, end)
    fake = exp.GenerateSeries(start=args[0] if args else None, end=args[1] if len(args) > 1 else None,
                              step=args[2] if len(args) > 2 else None,
                              is_end_exclusive=func_name(node) == "RANGE")
    return series_length(fake)


# ---------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------


def check_recursive(ctx: SqlContext) -> Iterator[Hit]:
    for with_ in ctx.of(exp.With):
        if with_.args.get("recursive"):
            yield Hit({}, with_)


def check_row_generator(ctx: SqlContext) -> Iterator[Hit]:
    cap = ctx.policy.max_generated_rows
    for node in ctx.of(exp.GenerateSeries, exp.GenerateDateArray, exp.Anonymous):
        if isinstance(node, exp.Anonymous) and func_name(node) not in ("RANGE", "GENERATE_SERIES"):
            continue
        name = "range" if node.args.get("is_end_exclusive") else "generate_series"
        if isinstance(node, exp.Anonymous):
            count = _anonymous_series_length(node)
        elif isinstance(node, exp.GenerateDateArray):
            name, count = "generate_date_array", None
        else:
            count = series_length(node)
        if count is None:
            yield Hit({"what": f"{name}() with bounds that are not constants", "cap": cap}, node)
        elif count > cap:
            yield Hit({"what": f"{name}() generating {_amount(count)} values", "cap": cap}, node)


def _size_of(node: exp.Func) -> tuple[str, float | None] | None:
    """(description, bytes or elements the call builds) for a size function, None for other calls."""
    name = func_name(node)
    if name not in SIZE_FUNCTIONS:
        return None
    if isinstance(node, exp.Repeat):
        times, value = constant(node.args.get("times")), node.this
        width = len(value.name) if isinstance(value, exp.Literal) and value.is_string else ASSUMED_VALUE_BYTES
        return "repeat()", None if times is None else times * max(width, 1)
    if isinstance(node, exp.Pad):
        return ("lpad()" if node.args.get("is_left") else "rpad()"), constant(node.expression)
    if isinstance(node, exp.Space):
        return "space()", constant(node.this)
    args = list(node.expressions) if isinstance(node, exp.Anonymous) else [node.this, *node.expressions]
    if name in ("LIST_RESIZE", "ARRAY_RESIZE"):
        return f"{name.lower()}()", constant(args[1]) if len(args) > 1 else None
    if name == "ARRAY_FILL":
        dims = args[1].expressions if len(args) > 1 and isinstance(args[1], exp.Array) else []
        sizes = [constant(d) for d in dims]
        return "array_fill()", math.prod(sizes) if sizes and None not in sizes else None  # type: ignore[arg-type]
    if name == "BAR":
        return "bar()", constant(args[3]) if len(args) > 3 else 80.0
    # printf / format: widths written in the format string
    pattern = args[0] if args else None
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return f"{name.lower()}()", None
    widths = [int(a or b) for a, b in PRINTF_WIDTH_RE.findall(pattern.name)]
    return f"{name.lower()}()", float(sum(widths) + len(pattern.name))


def check_large_string(ctx: SqlContext) -> Iterator[Hit]:
    cap = ctx.policy.max_value_bytes
    for node in ctx.of(*SIZE_NODE_TYPES):
        found = _size_of(node)
        if found is None:
            continue
        what, size = found
        if size is None:
            yield Hit({"what": f"{what} with a size that is not a constant", "cap": cap}, node)
        elif size > cap:
            yield Hit({"what": f"{what} building a value of about {_amount(size)} bytes", "cap": cap}, node)


def check_join_fanout(ctx: SqlContext) -> Iterator[Hit]:
    if not any(select.args.get("joins") for select in ctx.of(exp.Select)):
        return  # no join anywhere: no scope needed
    cap = ctx.policy.max_join_rows
    estimator = RowEstimator(ctx)
    for scope in ctx.scopes:
        select = scope.expression
        if not isinstance(select, exp.Select) or not select.args.get("joins"):
            continue
        rows = estimator.joined_rows(scope)
        if rows is not None and rows > cap:
            names = ", ".join(name for name, _ in _join_items(select))
            yield Hit({"rows": _amount(rows), "tables": names, "cap": _amount(cap)}, select.args["joins"][0])


def check_large_aggregate(ctx: SqlContext) -> Iterator[Hit]:
    collecting: dict[int, exp.Func] = {}  # id(owning SELECT) -> its first collecting aggregate
    for node in ctx.of(exp.AggFunc, exp.Anonymous):  # json_group_array & co. parse as Anonymous
        if func_name(node) in COLLECTING_AGGREGATES:
            collecting.setdefault(id(node.find_ancestor(exp.Select)), node)
    if not collecting:
        return
    row_cap, byte_cap = ctx.policy.max_collected_rows, ctx.policy.max_collected_bytes
    estimator = RowEstimator(ctx)
    for scope in ctx.scopes:
        aggregate = collecting.get(id(scope.expression))
        rows = estimator.joined_rows(scope) if aggregate is not None else None
        if aggregate is None or rows is None:
            continue
        name, width = _written_name(ctx, aggregate), _value_bytes(aggregate)
        if rows > row_cap:
            yield Hit({"function": name, "what": f"{_amount(rows)} rows", "cap": f"{_amount(row_cap)} rows"},
                      aggregate)
        elif width is not None and rows * width > byte_cap:
            yield Hit({"function": name, "what": f"{_amount(rows * width)} bytes ({_amount(rows)} rows of up to "
                                                 f"{_amount(width)} bytes)", "cap": f"{_amount(byte_cap)} bytes"},
                      aggregate)


def _value_bytes(aggregate: exp.Func) -> float | None:
    """The largest value a size function inside ``aggregate`` builds (None: no size function, or unknown)."""
    sizes = [found[1] for node in aggregate.find_all(*SIZE_NODE_TYPES) if (found := _size_of(node))]
    known = [size for size in sizes if size is not None]
    return max(known) if known else None


def _written_name(ctx: SqlContext, node: exp.Func) -> str:
    """A function's name as the query spells it (sqlglot normalises string_agg to GROUP_CONCAT)."""
    position = node_position(node)  # its first argument's token (or its own name's)
    if position is None:
        return func_name(node).lower()
    before = _CALL_BEFORE_RE.search(ctx.sql[:position])
    match = before or _NAME_RE.match(ctx.sql, position)
    return (match.group(1) if before else match.group(0)).lower() if match else func_name(node).lower()


def _amount(value: float) -> str:
    if math.isinf(value) or value >= 1e15:
        return "an unbounded number of" if math.isinf(value) else f"{value:.1e}"
    return f"{int(value):,}"


# ---------------------------------------------------------------------------------------------------
# Row estimates: upper bounds from table sizes, per sqlglot scope
# ---------------------------------------------------------------------------------------------------


def _join_items(select: exp.Select) -> list[tuple[str, exp.Expr]]:
    items: list[exp.Expr] = []
    from_ = select.args.get("from_")
    if from_:
        items.append(from_.this)
    items.extend(join.this for join in select.args.get("joins") or [])
    return [((item.alias_or_name or "").lower(), item) for item in items]


class RowEstimator:
    """Upper-bound row counts of scopes, from ``ctx.sizes`` (table -> rows). None = unknown."""

    def __init__(self, ctx: SqlContext) -> None:
        self.ctx = ctx
        self.cache: dict[int, float | None] = {}

    def scope_rows(self, scope: Scope) -> float | None:
        key = id(scope.expression)
        if key not in self.cache:
            self.cache[key] = None  # recursion guard
            self.cache[key] = self._scope_rows(scope)
        return self.cache[key]

    def _scope_rows(self, scope: Scope) -> float | None:
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            parts = [self.scope_rows(s) for s in scope.union_scopes]
            return None if None in parts else sum(parts)  # type: ignore[arg-type]
        if not isinstance(node, exp.Select):
            return None
        rows = self.joined_rows(scope)
        if rows is not None and not node.args.get("group") and _aggregates_only(node):
            rows = 1.0
        limit = node.args.get("limit")
        limit_value = constant(limit.expression) if isinstance(limit, exp.Limit) else None
        if limit_value is not None:
            rows = limit_value if rows is None else min(rows, limit_value)
        return rows

    def source_rows(self, scope: Scope, name: str, item: exp.Expr) -> float | None:
        source = scope.sources.get(name)
        if isinstance(source, Scope):
            return self.scope_rows(source)
        if isinstance(item, exp.Table) and isinstance(item.this, exp.GenerateSeries):
            return series_length(item.this)
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            rows = self.ctx.sizes.get(item.name.lower())
            return None if rows is None else float(rows)
        return 1.0  # unnest / lateral / values: sized by their own rules

    def joined_rows(self, scope: Scope) -> float | None:
        select = scope.expression
        items = _join_items(select)
        if not items:
            return 1.0
        unique = {name: self._unique_columns(scope, name, item) for name, item in items}
        owners = self._column_owners(items)
        sizes = {name: self.source_rows(scope, name, item) for name, item in items}
        where = select.args.get("where")
        pinned = _pinned_sources(where.this if where else None, unique, owners)
        for name in pinned:
            sizes[name] = min(sizes[name], 1.0) if sizes[name] is not None else 1.0
        first = items[0][0]
        rows, seen = sizes[first], {first}
        joins = select.args.get("joins") or []
        for (name, _item), join in zip(items[1:], joins, strict=True):
            right = sizes[name]
            if rows is None or right is None:
                return None
            pairs = _equal_pairs(join, where.this if where else None, name, seen, owners)
            if any(col in unique[name] for col, _, _ in pairs):
                new = rows  # each row so far meets at most one row of the joined source
            else:
                keyed = [(other, col) for _, other, col in pairs if col in unique.get(other, ())]
                if keyed:
                    other = keyed[0][0]
                    new = right * rows / max(sizes.get(other) or 1.0, 1.0)
                else:
                    new = rows * right
            if join.args.get("side", "").upper() in ("LEFT", "FULL"):
                new = max(new, rows)
            rows = new
            seen.add(name)
        return rows

    def _column_owners(self, items: list[tuple[str, exp.Expr]]) -> dict[str, str]:
        """Unqualified column name -> the one source that has it (canonical tables only)."""
        owners: dict[str, str] = {}
        for name, item in items:
            if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
                for column in self.ctx.tables.get(item.name.lower(), ()):
                    owners[column] = "" if column in owners else name  # "" = ambiguous
        return owners

    def _unique_columns(self, scope: Scope, name: str, item: exp.Expr) -> set[str]:
        source = scope.sources.get(name)
        if isinstance(source, Scope):
            inner = source.expression
            group = inner.args.get("group") if isinstance(inner, exp.Select) else None
            keys = [g for g in (group.expressions if group else []) if isinstance(g, exp.Column)]
            return {keys[0].name.lower()} if len(keys) == 1 else set()
        if isinstance(item, exp.Table) and item.name.lower() in TABLES:
            return {id_column(item.name.lower())}
        return set()


def _aggregates_only(select: exp.Select) -> bool:
    def aggregate(node: exp.Expr) -> bool:
        node = node.unalias()
        return isinstance(node.this if isinstance(node, exp.Filter) else node, exp.AggFunc)

    return bool(select.expressions) and all(aggregate(p) for p in select.expressions)


def _conjuncts(condition: exp.Expr | None) -> list[exp.Expr]:
    if condition is None:
        return []
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]


def _owner(column: exp.Column, owners: Mapping[str, str]) -> str:
    return column.table.lower() or owners.get(column.name.lower(), "")


def _equal_pairs(join: exp.Join, where: exp.Expr | None, name: str, seen: set[str],
                 owners: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(column of ``name``, other source, its column) for each ``a.x = b.y`` linking ``name`` to ``seen``."""
    pairs = []
    for column in join.args.get("using") or []:
        col = column.name.lower()
        pairs.extend((col, other, col) for other in seen)
    for condition in _conjuncts(join.args.get("on")) + _conjuncts(where):
        if not isinstance(condition, exp.EQ):
            continue
        left, right = condition.this, condition.expression
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            continue
        a, b = _owner(left, owners), _owner(right, owners)
        if a == name and b in seen:
            pairs.append((left.name.lower(), b, right.name.lower()))
        elif b == name and a in seen:
            pairs.append((right.name.lower(), a, left.name.lower()))
    return pairs


def _pinned_sources(where: exp.Expr | None, unique: Mapping[str, set[str]],
                    owners: Mapping[str, str]) -> set[str]:
    """Sources filtered to one row by ``alias.key = <constant>`` on a unique column."""
    pinned = set()
    for condition in _conjuncts(where):
        if isinstance(condition, exp.EQ):
            column, value = condition.this, condition.expression
            if isinstance(value, exp.Column):
                column, value = value, column
            if (isinstance(column, exp.Column) and isinstance(value, exp.Literal)
                    and column.name.lower() in unique.get(_owner(column, owners), ())):
                pinned.add(_owner(column, owners))
    return pinned
