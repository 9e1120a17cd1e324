"""SOQL rules: a table of rule code -> severity, message, check; and ``check_soql`` which runs them.

Every check reads a :class:`SoqlContext` (built once per query: scopes, field references, resolved
catalog entries) and yields :class:`~canonry.guard.verdict.Hit` objects. Fixes (LIMIT rewrites) mutate
the parsed tree, which is then regenerated with the SOQL dialect.

Refused outright: clauses with side effects (``FOR VIEW``/``FOR REFERENCE``/``UPDATE TRACKING``/``UPDATE
VIEWSTAT`` write usage data; ``FOR UPDATE`` locks), subqueries Salesforce rejects (a semi-join inside any
subquery, more than two semi-joins), and comments (SOQL has none). The selectivity rules
(:data:`SELECTIVITY_CODES`) are warnings by default; ``SoqlPolicy(refuse_nonselective=True)`` turns them
into errors - the AI loop always does, ``canonry soql run`` does unless ``--allow-nonselective``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from sqlglot import exp

from canonry.guard.catalog import Catalog, FieldInfo, ObjectInfo, load_catalog
from canonry.guard.soql_dialect import to_soql
from canonry.guard.soql_expressions import (
    AGGREGATE_FUNCTIONS,
    Excludes,
    Fields,
    Includes,
    SoqlSyntaxError,
    TypeOf,
)
from canonry.guard.soql_shape import parse_checked_soql
from canonry.guard.verdict import Hit, Rule, Verdict, Violation, evaluate, node_position

#: fields of Salesforce's polymorphic "Name" object, valid after any polymorphic relationship (What.Name)
POLYMORPHIC_NAME_FIELDS = frozenset({"id", "name", "type", "alias", "email", "firstname", "lastname", "isactive",
                                     "phone", "title", "username", "recordtypeid", "userroleid", "profileid"})


@dataclass(frozen=True)
class SoqlPolicy:
    default_limit: int = 200  # added when a query has no LIMIT
    max_limit: int = 2000  # larger LIMITs are lowered to this
    fields_all_limit: int = 200  # Salesforce: FIELDS(ALL)/FIELDS(CUSTOM) need LIMIT <= 200
    max_offset: int = 2000  # Salesforce's OFFSET maximum
    max_relationship_depth: int = 5  # Salesforce: five levels of relationship
    max_child_subqueries: int = 20  # Salesforce: 20 parent-to-child subqueries per query
    max_semijoins: int = 2  # Salesforce: at most two semi-/anti-join subqueries in the WHERE
    refuse_nonselective: bool = False  # selectivity warnings become errors (AI loop; `soql run` default)


#: the selectivity warnings ``refuse_nonselective`` turns into refusals
SELECTIVITY_CODES: frozenset[str] = frozenset({"SOQL_NO_FILTER_LARGE_OBJECT", "SOQL_NON_SELECTIVE_FILTER",
                                               "SOQL_LEADING_WILDCARD", "SOQL_NEGATIVE_FILTER_ONLY"})
NONSELECTIVE_NOTE = "Refused: only selective queries are run here."


# ---------------------------------------------------------------------------------------------------
# Context: scopes and field references, computed once
# ---------------------------------------------------------------------------------------------------


@dataclass
class Scope:
    select: exp.Select
    written: str  # the FROM name as written (object, or child relationship name)
    alias: str | None
    kind: str  # "main" | "child" | "semijoin"
    depth: int  # parent-to-child nesting level (main = 0)
    parent: Scope | None = None
    obj: ObjectInfo | None = None
    problem: str | None = None  # why the FROM name did not resolve


@dataclass
class FieldRef:
    scope: Scope
    path: list[str]  # relationship path, the FROM alias/object prefix removed
    node: exp.Expr
    clause: str  # expressions | where | group | having | order
    field: FieldInfo | None = None
    owner: ObjectInfo | None = None  # the object the last path element was looked up on
    problem: str | None = None  # why the path did not resolve (None = resolved or unverifiable)


@dataclass
class SoqlContext:
    sql: str
    tree: exp.Expr
    catalog: Catalog
    policy: SoqlPolicy
    scopes: list[Scope] = field(default_factory=list)
    refs: list[FieldRef] = field(default_factory=list)

    @property
    def main(self) -> Scope | None:
        return self.scopes[0] if self.scopes else None


def build_context(sql: str, tree: exp.Expr, catalog: Catalog, policy: SoqlPolicy) -> SoqlContext:
    ctx = SoqlContext(sql, tree, catalog, policy)
    if isinstance(tree, exp.Select):
        _add_scope(ctx, tree, "main", 0, None)
    return ctx


def _add_scope(ctx: SoqlContext, select: exp.Select, kind: str, depth: int, parent: Scope | None) -> None:
    table = select.args["from_"].this
    scope = Scope(select, table.name, table.alias or None, kind, depth, parent)
    prefix = table.text("db")
    if kind == "child" and prefix and parent and prefix.lower() not in {
        n.lower() for n in (parent.alias, parent.written, parent.obj.name if parent.obj else None) if n
    }:
        scope.problem = f"{prefix}.{scope.written} does not start from the outer object {parent.written}"
    elif kind == "child":
        parent_obj = parent.obj if parent else None
        child_name = parent_obj.child(scope.written) if parent_obj else None
        if parent_obj and not child_name:
            known = ", ".join(sorted(parent_obj.children_written)) or "none"
            scope.problem = f"{scope.written} is not a child relationship of {parent_obj.name} (known: {known})"
        scope.obj = ctx.catalog.object(child_name) if child_name else None
    else:
        scope.obj = ctx.catalog.object(scope.written)
        if scope.obj is None:
            scope.problem = f"{scope.written} is not an object in the catalog"
    ctx.scopes.append(scope)

    for node, clause in _own_nodes(select):
        if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select):
            sub_kind = "child" if clause == "expressions" else "semijoin"
            _add_scope(ctx, node.this, sub_kind, depth + (sub_kind == "child"), scope)
        elif isinstance(node, TypeOf):
            _add_typeof_refs(ctx, scope, node)
        elif isinstance(node, (exp.Column, exp.Dot)) and not isinstance(node.parent, exp.Dot):
            path = _strip_prefix(scope, _path_parts(node))
            if clause in ("order", "having") and len(path) == 1 and _is_projection_alias(select, path[0]):
                continue
            ctx.refs.append(_resolve_ref(ctx.catalog, FieldRef(scope, path, node, clause), scope.obj))


def _own_nodes(select: exp.Select) -> Iterator[tuple[exp.Expr, str]]:
    """Nodes of one SELECT with the clause they sit in; stops at subqueries and TYPEOF (yielded)."""
    for key in ("expressions", "where", "group", "having", "order"):
        value = select.args.get(key)
        for top in value if isinstance(value, list) else [value] if value else []:
            stack = [top]
            while stack:
                node = stack.pop()
                yield node, key
                if isinstance(node, (exp.Subquery, TypeOf)) or isinstance(node, (exp.Column, exp.Dot)):
                    continue
                stack.extend(reversed(list(node.iter_expressions())))


def _path_parts(node: exp.Expr) -> list[str]:
    if isinstance(node, exp.Dot):
        return _path_parts(node.this) + [node.expression.name]
    return [part.name for part in node.parts]


def _strip_prefix(scope: Scope, path: list[str]) -> list[str]:
    names = (scope.alias, scope.written, scope.obj.name if scope.obj else None)
    if len(path) > 1 and path[0].lower() in {n.lower() for n in names if n}:
        return path[1:]
    return path


def _is_projection_alias(select: exp.Select, name: str) -> bool:
    return any(isinstance(p, exp.Alias) and p.alias.lower() == name.lower() for p in select.expressions)


def _add_typeof_refs(ctx: SoqlContext, scope: Scope, node: TypeOf) -> None:
    relationship = FieldRef(scope, [node.this.name], node.this, "expressions")
    lookup = scope.obj.parent(node.this.name) if scope.obj else None
    if scope.obj and (lookup is None or len(lookup.reference_to) < 2):
        relationship.problem = f"{scope.obj.name}.{node.this.name} is not a polymorphic relationship"
        relationship.owner = scope.obj
        ctx.refs.append(relationship)
        return
    for when in node.args["ifs"]:
        target = ctx.catalog.object(when.name)
        for column in when.expressions:
            ref = FieldRef(scope, _path_parts(column), column, "expressions")
            ctx.refs.append(_resolve_ref(ctx.catalog, ref, target))
    for column in node.args.get("default") or []:
        ref = FieldRef(scope, _path_parts(column), column, "expressions")
        if not (len(ref.path) == 1 and ref.path[0].lower() in POLYMORPHIC_NAME_FIELDS):
            ref.problem = f"{ref.path[-1]} is not a field every {node.this.name} type has (use WHEN branches)"
        ctx.refs.append(ref)


def _resolve_ref(catalog: Catalog, ref: FieldRef, obj: ObjectInfo | None) -> FieldRef:
    """Walk a relationship path through the catalog. Unknown start object or a target outside the
    catalog leaves the reference unverified (no problem reported): only what we know can be wrong."""
    if obj is None:
        return ref
    for index, part in enumerate(ref.path[:-1]):
        lookup = obj.parent(part)
        if lookup is None:
            hint = f" (did you mean {part}Id's relationship?)" if obj.field(part + "Id") else ""
            ref.owner, ref.problem = obj, f"{obj.name} has no relationship named {part}{hint}"
            return ref
        targets = [t for t in (catalog.object(name) for name in lookup.reference_to) if t is not None]
        if not targets:
            return ref
        if len(lookup.reference_to) > 1:  # polymorphic (Owner, What, Who): only Name-object fields
            rest = ref.path[index + 1 :]
            if len(rest) == 1 and rest[0].lower() in POLYMORPHIC_NAME_FIELDS:
                ref.owner = targets[0]
                ref.field = next((t.field(rest[0]) for t in targets if t.field(rest[0])), None)
                return ref
            ref.owner = obj
            ref.problem = f"{obj.name}.{part} is polymorphic; use TYPEOF to reach {'.'.join(rest)}"
            return ref
        obj = targets[0]
    ref.owner = obj
    ref.field = obj.field(ref.path[-1])
    if ref.field is None:
        ref.problem = f"{obj.name} has no field {ref.path[-1]}"
    return ref


# ---------------------------------------------------------------------------------------------------
# Predicate helpers
# ---------------------------------------------------------------------------------------------------

COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.In, Includes, Excludes)


def _leaves(condition: exp.Expr) -> Iterator[exp.Expr]:
    """Leaf predicates of a boolean condition; NOT x and `x NOT IN` come out as the Not node."""
    if isinstance(condition, (exp.And, exp.Or)):
        yield from _leaves(condition.this)
        yield from _leaves(condition.expression)
    elif isinstance(condition, exp.Paren):
        yield from _leaves(condition.this)
    else:
        yield condition


def _is_negative(leaf: exp.Expr) -> bool:
    return (
        isinstance(leaf, (exp.Not, exp.NEQ, Excludes))
        or (isinstance(leaf, exp.Like) and bool(leaf.args.get("negate")))
    )


def _like_pattern(node: exp.Like) -> str | None:
    pattern = node.expression
    return pattern.name if isinstance(pattern, exp.Literal) and pattern.is_string else None


def _leading_wildcard(node: exp.Like) -> bool:
    pattern = _like_pattern(node)
    return pattern is not None and pattern[:1] in ("%", "_")


def _direct_field(ctx: SoqlContext, scope: Scope, node: exp.Expr) -> FieldInfo | None:
    """The field of ``scope``'s own object that ``node`` names (no relationship hop), if any."""
    if not isinstance(node, exp.Column):
        return None
    path = _strip_prefix(scope, _path_parts(node))
    return scope.obj.field(path[0]) if scope.obj and len(path) == 1 else None


def _is_selective(ctx: SoqlContext, scope: Scope, condition: exp.Expr) -> bool:
    """Whether Salesforce's optimizer could use an index: AND needs one selective side, OR needs all."""
    if isinstance(condition, exp.Paren):
        return _is_selective(ctx, scope, condition.this)
    if isinstance(condition, exp.And):
        return _is_selective(ctx, scope, condition.this) or _is_selective(ctx, scope, condition.expression)
    if isinstance(condition, exp.Or):
        return _is_selective(ctx, scope, condition.this) and _is_selective(ctx, scope, condition.expression)
    if _is_negative(condition) or not isinstance(condition, (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.In, Includes)):
        return False
    if isinstance(condition, exp.Like) and (_leading_wildcard(condition) or _like_pattern(condition) is None):
        return False
    if isinstance(condition.args.get("expression"), exp.Null):
        return False  # nulls are not indexed
    target = _direct_field(ctx, scope, condition.this)
    return bool(target and target.indexed)


def _set_limit(select: exp.Select, value: int, only_lower: bool = False) -> None:
    current = _limit_value(select)
    if only_lower and current is not None and current <= value:
        return
    select.set("limit", exp.Limit(expression=exp.Literal.number(value)))


def _limit_value(select: exp.Select) -> int | None:
    limit = select.args.get("limit")
    return int(limit.expression.name) if limit else None


def _single_row_aggregate(select: exp.Select) -> bool:
    """SELECT COUNT() / SUM(x) ... without GROUP BY returns one row: a LIMIT would change its meaning."""
    if select.args.get("group"):
        return False
    return all(
        isinstance(p.unalias(), exp.Anonymous) and p.unalias().name.upper() in AGGREGATE_FUNCTIONS
        for p in select.expressions
    )


# ---------------------------------------------------------------------------------------------------
# Checks (one small function per rule)
# ---------------------------------------------------------------------------------------------------


def check_not_select(ctx: SoqlContext) -> Iterator[Hit]:
    if not isinstance(ctx.tree, exp.Select):
        yield Hit({"statement": ctx.tree.key.upper()}, ctx.tree)


def check_unknown_object(ctx: SoqlContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if scope.problem:
            yield Hit({"name": scope.written, "reason": scope.problem}, scope.select.args["from_"].this)


def check_unknown_field(ctx: SoqlContext) -> Iterator[Hit]:
    for ref in ctx.refs:
        if ref.problem:
            yield Hit({"path": ".".join(ref.path), "reason": ref.problem}, ref.node)


def check_not_filterable(ctx: SoqlContext) -> Iterator[Hit]:
    for ref in ctx.refs:
        if ref.clause in ("where", "having") and ref.field is not None and not ref.field.filterable:
            yield Hit({"path": ".".join(ref.path), "type": ref.field.type}, ref.node)


def _large_main(ctx: SoqlContext) -> Scope | None:
    main = ctx.main
    return main if main and main.obj and ctx.catalog.is_large(main.obj.name) else None


def _size_params(ctx: SoqlContext, scope: Scope) -> dict[str, object]:
    assert scope.obj is not None
    return {"object": scope.obj.name, "rows": scope.obj.record_count or 0,
            "indexed": ", ".join(scope.obj.indexed_fields[:8])}


def check_no_filter_large(ctx: SoqlContext) -> Iterator[Hit]:
    main = _large_main(ctx)
    if main and not main.select.args.get("where"):
        yield Hit(_size_params(ctx, main), main.select.args["from_"].this)


def check_non_selective(ctx: SoqlContext) -> Iterator[Hit]:
    main = _large_main(ctx)
    where = main.select.args.get("where") if main else None
    if main and where and not _is_selective(ctx, main, where.this):
        yield Hit(_size_params(ctx, main), where.this)


def check_leading_wildcard(ctx: SoqlContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        for clause in ("where", "having"):
            node = scope.select.args.get(clause)
            for like in _own_clause_nodes(node, exp.Like):
                if _leading_wildcard(like):
                    yield Hit({"pattern": _like_pattern(like)}, like.expression)


def _own_clause_nodes(node: exp.Expr | None, kind: type) -> Iterator[exp.Expr]:
    if node is None:
        return
    for sub in node.walk(bfs=False, prune=lambda n: isinstance(n, exp.Subquery)):
        if isinstance(sub, kind):
            yield sub


def check_negative_only(ctx: SoqlContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        where = scope.select.args.get("where")
        if where is None:
            continue
        leaves = list(_leaves(where.this))
        if leaves and all(_is_negative(leaf) for leaf in leaves):
            yield Hit({"object": scope.written}, where.this)


def check_no_limit(ctx: SoqlContext) -> Iterator[Hit]:
    main = ctx.main
    if main and not main.select.args.get("limit") and not _single_row_aggregate(main.select):
        select, value = main.select, ctx.policy.default_limit
        yield Hit({"limit": value}, None, lambda _tree: _set_limit(select, value))


def check_limit_cap(ctx: SoqlContext) -> Iterator[Hit]:
    main = ctx.main
    value = _limit_value(main.select) if main else None
    if main and value is not None and value > ctx.policy.max_limit:
        select, cap = main.select, ctx.policy.max_limit
        yield Hit({"limit": value, "cap": cap}, select.args["limit"], lambda _tree: _set_limit(select, cap))


def check_fields_all_limit(ctx: SoqlContext) -> Iterator[Hit]:
    cap = ctx.policy.fields_all_limit
    for scope in ctx.scopes:
        fields = [p for p in scope.select.expressions if isinstance(p, Fields) and p.name in ("ALL", "CUSTOM")]
        value = _limit_value(scope.select)
        if fields and (value is None or value > cap):
            select = scope.select
            yield Hit({"kind": fields[0].name, "cap": cap, "limit": value if value is not None else "none"},
                      fields[0], lambda _tree, s=select: _set_limit(s, cap, only_lower=True))


def check_offset(ctx: SoqlContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        offset = scope.select.args.get("offset")
        if offset and int(offset.expression.name) > ctx.policy.max_offset:
            yield Hit({"offset": int(offset.expression.name), "max": ctx.policy.max_offset}, offset)


def check_relationship_depth(ctx: SoqlContext) -> Iterator[Hit]:
    limit = ctx.policy.max_relationship_depth
    for ref in ctx.refs:
        hops = len(ref.path) - 1
        if hops > limit:
            yield Hit({"what": f"{'.'.join(ref.path)} goes through {hops} relationships", "max": limit}, ref.node)
    for scope in ctx.scopes:
        if scope.depth > limit:
            yield Hit({"what": f"child subquery on {scope.written} is nested {scope.depth} levels deep",
                       "max": limit}, scope.select)


def check_child_subqueries(ctx: SoqlContext) -> Iterator[Hit]:
    children = [s for s in ctx.scopes if s.kind == "child"]
    if len(children) > ctx.policy.max_child_subqueries:
        yield Hit({"count": len(children), "max": ctx.policy.max_child_subqueries},
                  children[ctx.policy.max_child_subqueries].select)


def check_for_update(ctx: SoqlContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        for clause in scope.select.args.get("soql_for") or []:
            if clause.name == "UPDATE":
                yield Hit({}, clause)


#: what each usage-tracking clause writes
SIDE_EFFECTS: dict[str, str] = {
    "VIEW": "updates the records' LastViewedDate and the user's recently viewed list",
    "REFERENCE": "updates the records' LastReferencedDate and the user's recently viewed list",
    "UPDATE TRACKING": "records the query in Knowledge article search tracking",
    "UPDATE VIEWSTAT": "counts a view of each Knowledge article returned",
}


def check_side_effect_clause(ctx: SoqlContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        for clause in [*(scope.select.args.get("soql_for") or []), *(scope.select.args.get("soql_update") or [])]:
            if clause.name in SIDE_EFFECTS:
                written = clause.name if clause.name.startswith("UPDATE") else f"FOR {clause.name}"
                yield Hit({"clause": written, "effect": SIDE_EFFECTS[clause.name]}, clause)


def check_subquery_nesting(ctx: SoqlContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if scope.kind == "semijoin" and scope.parent is not None and scope.parent.kind != "main":
            inside = "another semi-join" if scope.parent.kind == "semijoin" else "a child relationship subquery"
            yield Hit({"what": f"a semi-join on {scope.written} inside {inside}"}, scope.select)
        elif scope.kind == "child" and scope.parent is not None and scope.parent.kind == "semijoin":
            yield Hit({"what": f"a child subquery on {scope.written} inside a semi-join"}, scope.select)
    top = [s for s in ctx.scopes if s.kind == "semijoin" and s.parent is not None and s.parent.kind == "main"]
    if len(top) > ctx.policy.max_semijoins:
        yield Hit({"what": f"{len(top)} semi-/anti-join subqueries (at most {ctx.policy.max_semijoins})"},
                  top[ctx.policy.max_semijoins].select)


def comment_offset(sql: str) -> int | None:
    """Offset of the first ``--`` or ``/*`` outside a '...' string (SOQL has no comments), else None."""
    if "--" not in sql and "/*" not in sql:
        return None  # the common case, without a per-character walk
    quoted, index = False, 0
    while index < len(sql):
        char = sql[index]
        if quoted and char == "\\":
            index += 2
            continue
        if char == "'":
            quoted = not quoted
        elif not quoted and sql.startswith(("--", "/*"), index):
            return index
        index += 1
    return None



# ---------------------------------------------------------------------------------------------------
# The rule table
# ---------------------------------------------------------------------------------------------------

SOQL_RULES: tuple[Rule, ...] = (
    Rule("SOQL_PARSE_ERROR", "error", "{message}", None),
    Rule("SOQL_NOT_SELECT", "error",
         "{statement} is not a query: SOQL only reads data, and the guard only lets SELECT through.",
         check_not_select),
    Rule("SOQL_UNKNOWN_OBJECT", "error", "Unknown object {name}: {reason}.", check_unknown_object),
    Rule("SOQL_UNKNOWN_FIELD", "error", "Unknown field {path}: {reason}.", check_unknown_field),
    Rule("SOQL_FIELD_NOT_FILTERABLE", "error",
         "{path} ({type}) cannot be used in a filter: Salesforce does not filter long text or compound fields.",
         check_not_filterable),
    Rule("SOQL_NO_FILTER_LARGE_OBJECT", "warning",
         "{object} is a large object (~{rows:,} records) and the query has no WHERE filter, so it reads "
         "every record. Filter on an indexed field ({indexed}).", check_no_filter_large),
    Rule("SOQL_NON_SELECTIVE_FILTER", "warning",
         "No selective filter on {object} (~{rows:,} records): none of the conditions can use an index, so "
         "Salesforce scans every record and may time out. Add =, IN, <, > or LIKE 'abc%' on an indexed "
         "field ({indexed}).", check_non_selective),
    Rule("SOQL_LEADING_WILDCARD", "warning",
         "LIKE '{pattern}' starts with a wildcard, which cannot use an index; anchor the pattern at the "
         "start (e.g. 'Acme%').", check_leading_wildcard),
    Rule("SOQL_NEGATIVE_FILTER_ONLY", "warning",
         "The filter on {object} only excludes values (!=, NOT IN, NOT LIKE, EXCLUDES, NOT): negative "
         "conditions cannot use an index. Add a positive condition.", check_negative_only),
    Rule("SOQL_NO_LIMIT", "warning", "The query has no LIMIT, so it can return any number of rows.",
         check_no_limit, fix_note="Added LIMIT {limit}."),
    Rule("SOQL_LIMIT_TOO_HIGH", "warning", "LIMIT {limit} is above the cap of {cap} rows.",
         check_limit_cap, fix_note="Lowered to LIMIT {cap}."),
    Rule("SOQL_FIELDS_ALL_LIMIT", "warning",
         "FIELDS({kind}) needs LIMIT {cap} or less (Salesforce rejects it otherwise); the LIMIT is {limit}.",
         check_fields_all_limit, fix_note="Set LIMIT {cap}."),
    Rule("SOQL_OFFSET_TOO_LARGE", "error",
         "OFFSET {offset} is above Salesforce's maximum of {max}; page with a filter on Id or "
         "CreatedDate instead.", check_offset),
    Rule("SOQL_RELATIONSHIP_TOO_DEEP", "error", "Too deep: {what}; Salesforce allows at most {max}.",
         check_relationship_depth),
    Rule("SOQL_TOO_MANY_SUBQUERIES", "error",
         "The query has {count} child relationship subqueries; the maximum is {max}.", check_child_subqueries),
    Rule("SOQL_FOR_UPDATE", "error",
         "FOR UPDATE locks the records it returns (Apex only); the guard only allows read-only queries.",
         check_for_update),
    Rule("SOQL_SIDE_EFFECT_CLAUSE", "error",
         "{clause} {effect}: running the query would write usage data. Remove {clause}.",
         check_side_effect_clause),
    Rule("SOQL_SUBQUERY_NOT_ALLOWED", "error",
         "Salesforce rejects {what}; use one level of semi-join in the main WHERE.", check_subquery_nesting),
    Rule("SOQL_COMMENT", "error",
         "'{marker}' starts a comment, and SOQL has no comments (text after it would be hidden from "
         "review); remove it.", None),
)

RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in SOQL_RULES}

#: the table with the selectivity warnings as errors (``SoqlPolicy.refuse_nonselective``)
STRICT_SOQL_RULES: tuple[Rule, ...] = tuple(
    replace(rule, severity="error", message=f"{rule.message} {NONSELECTIVE_NOTE}")
    if rule.code in SELECTIVITY_CODES else rule
    for rule in SOQL_RULES
)


def check_soql(query: str, catalog: Catalog | None = None, policy: SoqlPolicy | None = None) -> Verdict:
    """Guard one SOQL query: parse it, run every rule, apply rewrites, return the verdict."""
    catalog = catalog or load_catalog()
    policy = policy or SoqlPolicy()
    comment = comment_offset(query)
    if comment is not None:  # before parsing: the tokenizer would drop the comment silently
        rule = RULES_BY_CODE["SOQL_COMMENT"]
        violation = rule.violation(Hit({"marker": query[comment:comment + 2]}), comment, False)
        return Verdict("reject", (violation,), query, None, "soql")
    try:
        tree = parse_checked_soql(query)
    except SoqlSyntaxError as error:
        rule = RULES_BY_CODE["SOQL_PARSE_ERROR"]
        violation = Violation(rule.code, rule.severity, str(error), error.position)
        return Verdict("reject", (violation,), query, None, "soql")
    context = build_context(query, tree, catalog, policy)
    rules = STRICT_SOQL_RULES if policy.refuse_nonselective else SOQL_RULES
    return evaluate(rules, context, tree, node_position, to_soql, query, "soql")


def refuse_nonselective(verdict: Verdict) -> Verdict:
    """A verdict reached with the lenient table, its selectivity warnings made errors (a refusal, never a
    rewrite): for callers holding only a verdict, like the AI loop given any guard."""
    lenient = [v for v in verdict.violations if v.code in SELECTIVITY_CODES and v.severity != "error"]
    if not lenient:
        return verdict
    violations = tuple(
        replace(v, severity="error", message=f"{v.message} {NONSELECTIVE_NOTE}") if v in lenient else v
        for v in verdict.violations
    )
    return Verdict("reject", violations, verdict.query, None, verdict.kind)


def only_nonselective(verdict: Verdict) -> bool:
    """Was the query refused for selectivity alone (so ``--allow-nonselective`` would let it run)?"""
    errors = [v for v in verdict.violations if v.severity == "error"]
    return bool(errors) and all(v.code in SELECTIVITY_CODES for v in errors)
