"""The second step of reading SOQL: what sqlglot's parser accepts but SOQL does not have (joins, ``*``,
arithmetic, CTEs, unknown functions, quoted names, misplaced subqueries ...) becomes a
:class:`SoqlSyntaxError` with a character position. ``parse_checked_soql`` is parse + check."""

from __future__ import annotations

import typing as t

from sqlglot import exp

from canonry.guard.soql_dialect import parse_soql
from canonry.guard.soql_expressions import (
    SOQL_FUNCTIONS,
    DateLiteral,
    DateTimeLiteral,
    Excludes,
    Fields,
    ForClause,
    Includes,
    SecurityClause,
    SoqlSyntaxError,
    TypeOf,
    TypeOfWhen,
    UsingScope,
)
from canonry.guard.verdict import node_position

# ---------------------------------------------------------------------------------------------------
# Shape check: what sqlglot accepts but SOQL does not is a syntax error with a position
# ---------------------------------------------------------------------------------------------------

#: every node type a SOQL SELECT may contain
ALLOWED_NODES: frozenset[type] = frozenset(
    {
        exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Column, exp.Dot, exp.Alias,
        exp.Subquery, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
        exp.Literal, exp.Null, exp.Boolean, exp.Neg, exp.Paren, exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ,
        exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.In, exp.Anonymous, exp.Rollup, exp.Cube,
        DateLiteral, DateTimeLiteral, Fields, TypeOf, TypeOfWhen, Includes, Excludes, SecurityClause,
        UsingScope, ForClause,
    }
)

#: how to explain a node SOQL does not have (default: its sqlglot name)
UNSUPPORTED_TEXT: dict[type, str] = {
    exp.Star: "SELECT * (list the fields, or use FIELDS(ALL) with LIMIT 200)",
    exp.Distinct: "DISTINCT (use GROUP BY)",
    exp.Join: "JOIN (use relationship fields such as Account.Name, or a child subquery)",
    exp.With: "WITH ... AS common table expressions",
    exp.CTE: "common table expressions",
    exp.Is: "IS NULL (write Field = null or Field != null)",
    exp.Between: "BETWEEN (use >= and <=)",
    exp.Case: "CASE expressions",
    exp.Cast: "CAST",
    exp.Add: "arithmetic (+)",
    exp.Sub: "arithmetic (-)",
    exp.Mul: "arithmetic (*)",
    exp.Div: "arithmetic (/)",
    exp.DPipe: "string concatenation (||)",
    exp.Placeholder: "bind variables (:name) outside Apex",
    exp.Window: "window functions (OVER)",
    exp.Tuple: "row values",
    exp.Exists: "EXISTS (use a semi-join: Id IN (SELECT ...))",
    exp.ILike: "ILIKE (SOQL LIKE is already case-insensitive)",
    exp.Union: "UNION",
    exp.Except: "EXCEPT",
    exp.Intersect: "INTERSECT",
}




def _fail(message: str, node: exp.Expr | None, sql: str) -> t.NoReturn:
    raise SoqlSyntaxError(message, node_position(node), sql)


def check_soql_shape(tree: exp.Expr, sql: str) -> None:
    """Raise :class:`SoqlSyntaxError` for anything SOQL cannot express. ``tree`` is a parsed query."""
    if not isinstance(tree, exp.Select):
        what = UNSUPPORTED_TEXT.get(type(tree), "this form of query")
        _fail(f"SOQL has no {what}; write a single SELECT ... FROM ...", tree, sql)
    _check_select(tree, sql, child=False)


def _check_select(select: exp.Select, sql: str, child: bool) -> None:
    from_ = select.args.get("from_")
    if not from_ or not isinstance(from_.this, exp.Table):
        _fail("SOQL needs FROM followed by an object name", from_ or select, sql)
    table = from_.this
    if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        _fail("FROM takes one object name (e.g. FROM Account)", table, sql)
    if not select.expressions:
        _fail("SELECT needs at least one field", select, sql)

    for node in select.walk():
        kind = type(node)
        if kind not in ALLOWED_NODES:
            what = UNSUPPORTED_TEXT.get(kind, kind.__name__.upper())
            _fail(f"SOQL does not support {what}", node, sql)
        if kind is exp.Identifier and node.quoted:
            _fail("SOQL has no quoted names; strings use single quotes", node, sql)
        elif kind is exp.Anonymous and node.name.upper() not in SOQL_FUNCTIONS:
            _fail(f"Unknown SOQL function {node.name}()", node, sql)
        elif kind is exp.Subquery and node is not select:
            parent = node.parent
            if isinstance(parent, exp.Select) and node.arg_key == "expressions":
                if not isinstance(node.this, exp.Select):
                    _fail("A child relationship subquery must be a SELECT", node, sql)
                if node.alias:
                    _fail("A child relationship subquery takes no alias", node, sql)
            elif not (isinstance(parent, exp.In) and node.arg_key == "query"):
                _fail("Subqueries are only allowed as child relationships in SELECT or after IN", node, sql)
        elif kind is Fields and not (isinstance(node.parent, exp.Select) and node.arg_key == "expressions"):
            _fail("FIELDS() is only allowed in the SELECT list", node, sql)
        elif kind is TypeOf and not (isinstance(node.parent, exp.Select) and node.arg_key == "expressions"):
            _fail("TYPEOF is only allowed in the SELECT list", node, sql)
        elif kind is exp.Select and node is not select:
            _check_nested_select(node, sql)

    for projection in select.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, (exp.Literal, exp.Null, exp.Boolean, DateLiteral, DateTimeLiteral, exp.Neg)):
            _fail("The SELECT list takes fields, functions, TYPEOF or child subqueries, not values", inner, sql)


def _check_nested_select(select: exp.Select, sql: str) -> None:
    from_ = select.args.get("from_")
    table = from_.this if from_ else None
    in_where = isinstance(select.parent, exp.Subquery) and isinstance(select.parent.parent, exp.In)
    # a child subquery may name its relationship through the parent: FROM Account.Contacts
    qualified_ok = not in_where and isinstance(table, exp.Table) and not table.args.get("catalog")
    if not isinstance(table, exp.Table) or table.args.get("catalog") or (table.args.get("db") and not qualified_ok):
        _fail("A subquery needs FROM followed by one object or relationship name", from_ or select, sql)
    for key in ("soql_for", "soql_update", "soql_scope", "soql_with", "offset" if in_where else "_"):
        if select.args.get(key):
            _fail("This clause is not allowed in a subquery", select.args[key] if key != "soql_for" else select, sql)
    if in_where and len(select.expressions) != 1:
        _fail("A semi-join subquery selects exactly one Id or lookup field", select, sql)


def parse_checked_soql(sql: str) -> exp.Expr:
    """Parse and shape-check. Non-query statements (DELETE, UPDATE, ...) are returned as parsed so the
    rules can say "not a SELECT"; everything else that is not SOQL raises :class:`SoqlSyntaxError`."""
    tree = parse_soql(sql)
    if isinstance(tree, exp.Query):
        check_soql_shape(tree, sql)
    return tree
