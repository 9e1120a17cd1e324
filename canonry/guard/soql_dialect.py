"""A SOQL dialect for sqlglot: tokenizer, parser and generator subclasses plus SOQL-only expressions.

SOQL is much smaller than SQL, so the dialect works in two steps:

1. sqlglot's parser, narrowed to SOQL's clause order and extended with SOQL syntax (date literals,
   unquoted datetimes, ``FIELDS()``, ``TYPEOF``, ``INCLUDES``/``EXCLUDES``, ``USING SCOPE``,
   ``WITH SECURITY_ENFORCED``, ``FOR VIEW``/``FOR UPDATE``);
2. a whitelist pass (``check_soql_shape``) that turns every construct SOQL does not have (joins, ``*``,
   arithmetic, CTEs, unknown functions, ...) into a :class:`SoqlSyntaxError` with a character position.

``parse_soql`` never raises anything but :class:`SoqlSyntaxError`; ``to_soql`` regenerates the text.
Needs the pure-Python sqlglot (no ``sqlglotc``): compiled classes cannot be subclassed.
"""

from __future__ import annotations

import re
import typing as t

from sqlglot import exp, generator, parser, tokens
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokenizer_core import TokenizerCore
from sqlglot.tokens import Token, TokenType

from canonry.guard.verdict import friendly_parse_message, unterminated_quote

# ---------------------------------------------------------------------------------------------------
# Vocabulary (data)
# ---------------------------------------------------------------------------------------------------

DATE_LITERALS: frozenset[str] = frozenset(
    """YESTERDAY TODAY TOMORROW LAST_WEEK THIS_WEEK NEXT_WEEK LAST_MONTH THIS_MONTH NEXT_MONTH
    LAST_90_DAYS NEXT_90_DAYS THIS_QUARTER LAST_QUARTER NEXT_QUARTER THIS_YEAR LAST_YEAR NEXT_YEAR
    THIS_FISCAL_QUARTER LAST_FISCAL_QUARTER NEXT_FISCAL_QUARTER THIS_FISCAL_YEAR LAST_FISCAL_YEAR
    NEXT_FISCAL_YEAR""".split()
)

DATE_N_LITERALS: frozenset[str] = frozenset(
    """LAST_N_DAYS NEXT_N_DAYS N_DAYS_AGO NEXT_N_WEEKS LAST_N_WEEKS N_WEEKS_AGO NEXT_N_MONTHS
    LAST_N_MONTHS N_MONTHS_AGO NEXT_N_QUARTERS LAST_N_QUARTERS N_QUARTERS_AGO NEXT_N_YEARS LAST_N_YEARS
    N_YEARS_AGO NEXT_N_FISCAL_QUARTERS LAST_N_FISCAL_QUARTERS N_FISCAL_QUARTERS_AGO NEXT_N_FISCAL_YEARS
    LAST_N_FISCAL_YEARS N_FISCAL_YEARS_AGO""".split()
)

AGGREGATE_FUNCTIONS: frozenset[str] = frozenset({"AVG", "COUNT", "COUNT_DISTINCT", "MIN", "MAX", "SUM"})

#: every function SOQL knows (upper case); anything else is a syntax error
SOQL_FUNCTIONS: frozenset[str] = AGGREGATE_FUNCTIONS | frozenset(
    """CALENDAR_MONTH CALENDAR_QUARTER CALENDAR_YEAR DAY_IN_MONTH DAY_IN_WEEK DAY_IN_YEAR DAY_ONLY
    FISCAL_MONTH FISCAL_QUARTER FISCAL_YEAR HOUR_IN_DAY WEEK_IN_MONTH WEEK_IN_YEAR CONVERTCURRENCY
    CONVERTTIMEZONE TOLABEL FORMAT GROUPING DISTANCE GEOLOCATION""".split()
)

FIELDS_KINDS: frozenset[str] = frozenset({"ALL", "STANDARD", "CUSTOM"})
WITH_KINDS: frozenset[str] = frozenset({"SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"})
SCOPES: frozenset[str] = frozenset(
    {"DELEGATED", "EVERYTHING", "MINE", "MINE_AND_MY_GROUPS", "MY_TERRITORY", "MY_TEAM_TERRITORY", "TEAM"}
)
FOR_KINDS: frozenset[str] = frozenset({"VIEW", "REFERENCE", "UPDATE"})
UPDATE_KINDS: frozenset[str] = frozenset({"TRACKING", "VIEWSTAT"})

#: unquoted date / datetime literals: 2024-05-01, 2024-05-01T10:00:00Z, 2024-05-01T10:00:00.000+0000
DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))?(?![\w:])")

#: sqlglot has no spare token type; BIT_STRING never occurs in SOQL (no b'...' strings), so it carries
#: the unquoted datetime literals from the tokenizer to the parser
DATETIME_TOKEN = TokenType.BIT_STRING

# ---------------------------------------------------------------------------------------------------
# SOQL-only expressions
# ---------------------------------------------------------------------------------------------------


class DateLiteral(exp.Expression, exp.Condition):
    """``TODAY``, ``THIS_QUARTER``, ``LAST_N_DAYS:30`` (``this`` = name, ``expression`` = n)."""

    arg_types = {"this": True, "expression": False}


class DateTimeLiteral(exp.Expression, exp.Condition):
    """An unquoted date or datetime: ``2024-05-01``, ``2024-05-01T00:00:00Z``."""

    arg_types = {"this": True}


class Fields(exp.Expression, exp.Func):
    """``FIELDS(ALL|STANDARD|CUSTOM)``."""

    arg_types = {"this": True}


class TypeOf(exp.Expression):
    """``TYPEOF What WHEN Account THEN Name, Phone ... ELSE Name END``."""

    arg_types = {"this": True, "ifs": True, "default": False}


class TypeOfWhen(exp.Expression):
    arg_types = {"this": True, "expressions": True}


class Includes(exp.Expression, exp.Predicate):
    """Multi-select picklist ``INCLUDES ('a;b', 'c')``."""

    arg_types = {"this": True, "expressions": True}


class Excludes(exp.Expression, exp.Predicate):
    """Multi-select picklist ``EXCLUDES ('a', 'b')``."""

    arg_types = {"this": True, "expressions": True}


class SecurityClause(exp.Expression):
    """``WITH SECURITY_ENFORCED`` / ``WITH USER_MODE`` / ``WITH SYSTEM_MODE``."""

    arg_types = {"this": True}


class UsingScope(exp.Expression):
    """``USING SCOPE Mine``."""

    arg_types = {"this": True}


class ForClause(exp.Expression):
    """``FOR VIEW``, ``FOR REFERENCE``, ``FOR UPDATE`` and ``UPDATE TRACKING|VIEWSTAT``."""

    arg_types = {"this": True}


class SoqlSyntaxError(ValueError):
    """A SOQL parse error with a 0-based character position (or None when unknown)."""

    def __init__(self, message: str, position: int | None = None, sql: str = "") -> None:
        self.description = message
        self.position = position
        line, col = line_col(sql, position) if position is not None else (None, None)
        self.line, self.col = line, col
        where = f" (line {line}, column {col})" if line is not None else ""
        super().__init__(f"{message}{where}")


def line_col(sql: str, position: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    before = sql[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


# ---------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------


class _SoqlTokenizerCore(TokenizerCore):
    """Adds one rule to sqlglot's scanner: a digit run shaped like an ISO date is one datetime token."""

    __slots__ = ()

    def _scan_number(self) -> None:
        match = DATETIME_RE.match(self.sql, self._start)
        if match:
            text = match.group(0)
            self._advance(len(text) - 1)
            self._add(DATETIME_TOKEN, text)
            return
        super()._scan_number()


_DROPPED_KEYWORDS = ("UNKNOWN", "/*+")


class SoqlTokenizer(tokens.Tokenizer):
    QUOTES = ["'"]
    # SOQL has no quoted identifiers; "..." is tokenized as one so the shape check can reject it clearly
    IDENTIFIERS: t.ClassVar[list[str | tuple[str, str]]] = ['"']
    STRING_ESCAPES = ["\\"]
    BIT_STRINGS: t.ClassVar[list[str | tuple[str, str]]] = []
    HEX_STRINGS: t.ClassVar[list[str | tuple[str, str]]] = []
    KEYWORDS = {k: v for k, v in tokens.Tokenizer.KEYWORDS.items() if k not in _DROPPED_KEYWORDS}

    def _init_core(self) -> TokenizerCore:
        core = super()._init_core()
        # Same slots, one overridden method: swap the class rather than repeat the 25 constructor args.
        core.__class__ = _SoqlTokenizerCore
        return core


# ---------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------


def _parse_date_literal(self: SoqlParser) -> DateLiteral:
    token = self._prev
    name = token.text.upper()
    if name in DATE_N_LITERALS:
        if not self._match(TokenType.COLON) or not self._match(TokenType.NUMBER):
            self.raise_error(f"Date literal {name} needs a number, e.g. {name}:30", token)
        number = self._prev.text
        if not number.isdigit():
            self.raise_error(f"Date literal {name} needs a whole number", self._prev)
        return self.expression(DateLiteral(this=name, expression=exp.Literal.number(number)), token)
    return self.expression(DateLiteral(this=name), token)


def _parse_typeof(self: SoqlParser) -> TypeOf:
    token = self._prev
    field = self._parse_column()
    if not isinstance(field, exp.Column):
        self.raise_error("TYPEOF needs a polymorphic relationship field, e.g. TYPEOF What")
    ifs: list[TypeOfWhen] = []
    while self._match(TokenType.WHEN):
        type_token = self._curr
        sobject = self._parse_id_var(any_token=False)
        if not sobject:
            self.raise_error("Expected an object name after WHEN", type_token)
        if not self._match(TokenType.THEN):
            self.raise_error("Expected THEN in TYPEOF")
        fields = self._parse_csv(self._parse_column)
        ifs.append(self.expression(TypeOfWhen(this=sobject, expressions=fields), type_token))
    if not ifs:
        self.raise_error("TYPEOF needs at least one WHEN ... THEN ... branch")
    default = self._parse_csv(self._parse_column) if self._match(TokenType.ELSE) else None
    if not self._match(TokenType.END):
        self.raise_error("Expected END to close TYPEOF")
    return self.expression(TypeOf(this=field, ifs=ifs, default=default), token)


def _parse_fields(self: SoqlParser) -> Fields:
    token = self._curr
    kind = token.text.upper() if token else ""
    if kind not in FIELDS_KINDS:
        self.raise_error("FIELDS() takes ALL, STANDARD or CUSTOM", token)
    self._advance()
    if not self._match(TokenType.R_PAREN, advance=False):
        self.raise_error("Expected ) after FIELDS(" + kind)
    return self.expression(Fields(this=kind), token)


def _parse_with(self: SoqlParser) -> tuple[str, SecurityClause]:
    token = self._curr
    kind = token.text.upper() if token else ""
    if kind not in WITH_KINDS:
        self.raise_error("WITH takes SECURITY_ENFORCED, USER_MODE or SYSTEM_MODE", token)
    self._advance()
    return "soql_with", self.expression(SecurityClause(this=kind), token)


def _parse_using_scope(self: SoqlParser) -> tuple[str, UsingScope]:
    if not self._match_text_seq("SCOPE"):
        self.raise_error("Expected SCOPE after USING")
    token = self._curr
    scope = token.text if token else ""
    if scope.upper() not in SCOPES:
        self.raise_error(f"Unknown scope {scope!r}; expected one of {', '.join(sorted(SCOPES))}", token)
    self._advance()
    return "soql_scope", self.expression(UsingScope(this=scope), token)


def _parse_for(self: SoqlParser) -> tuple[str, list[ForClause]]:
    clauses: list[ForClause] = []
    for_token = self._prev
    kind = (self._curr.text if self._curr else "").upper()
    if kind not in FOR_KINDS:
        self.raise_error("FOR takes VIEW, REFERENCE or UPDATE", self._curr or for_token)
    self._advance()
    clauses.append(self.expression(ForClause(this=kind), for_token))
    return "soql_for", clauses


def _parse_update_tracking(self: SoqlParser) -> tuple[str, list[ForClause]]:
    token = self._prev
    kind = (self._curr.text if self._curr else "").upper()
    if kind not in UPDATE_KINDS:
        self.raise_error("UPDATE takes TRACKING or VIEWSTAT", self._curr or token)
    self._advance()
    return "soql_update", [self.expression(ForClause(this=f"UPDATE {kind}"), token)]


def _parse_count_clause(self: SoqlParser, key: str, node: type[exp.Expression]) -> tuple[str, exp.Expression]:
    token = self._curr
    if not self._match(TokenType.NUMBER) or not token.text.isdigit():
        self.raise_error(f"{key.upper()} takes a whole number", token)
    return key, self.expression(node(expression=exp.Literal.number(token.text)), token)


def _after_keyword(parse: t.Callable[[SoqlParser], tuple[str, t.Any]]) -> t.Callable[[SoqlParser], tuple[str, t.Any]]:
    """A clause parser that first consumes the clause keyword itself."""

    def run(self: SoqlParser) -> tuple[str, t.Any]:
        self._advance()
        return parse(self)

    return run


#: token -> (clause rank, parser). SOQL clauses must appear in this order, each at most once.
SOQL_CLAUSES: dict[TokenType, tuple[int, t.Callable[[SoqlParser], tuple[str, t.Any]]]] = {
    TokenType.USING: (1, _after_keyword(_parse_using_scope)),
    TokenType.WHERE: (2, lambda self: ("where", self._parse_where())),
    TokenType.WITH: (3, _after_keyword(_parse_with)),
    TokenType.GROUP_BY: (4, lambda self: ("group", self._parse_group())),
    TokenType.HAVING: (5, lambda self: ("having", self._parse_having())),
    TokenType.ORDER_BY: (6, lambda self: ("order", self._parse_order())),
    TokenType.LIMIT: (7, _after_keyword(lambda self: _parse_count_clause(self, "limit", exp.Limit))),
    TokenType.OFFSET: (8, _after_keyword(lambda self: _parse_count_clause(self, "offset", exp.Offset))),
    TokenType.FOR: (9, _after_keyword(_parse_for)),
    TokenType.UPDATE: (10, _after_keyword(_parse_update_tracking)),
}

CLAUSE_ORDER_TEXT = (
    "SELECT … FROM … [USING SCOPE] [WHERE] [WITH] [GROUP BY] [HAVING] [ORDER BY] [LIMIT] [OFFSET] "
    "[FOR VIEW|REFERENCE|UPDATE] [UPDATE TRACKING|VIEWSTAT]"
)


class SoqlParser(parser.Parser):
    # clause keywords are never aliases: `FROM Account OFFSET` must fail, not alias Account as OFFSET
    TABLE_ALIAS_TOKENS: t.ClassVar = parser.Parser.TABLE_ALIAS_TOKENS - set(SOQL_CLAUSES)
    ALIAS_TOKENS: t.ClassVar = parser.Parser.ALIAS_TOKENS - set(SOQL_CLAUSES)
    FUNCTIONS: t.ClassVar[dict[str, t.Callable]] = {}  # every SOQL function stays exp.Anonymous
    FUNCTION_PARSERS: t.ClassVar[dict[str, t.Callable]] = {"FIELDS": _parse_fields}
    NO_PAREN_FUNCTIONS: t.ClassVar[dict] = {}
    NO_PAREN_FUNCTION_PARSERS: t.ClassVar = {
        "TYPEOF": _parse_typeof,
        **{name: _parse_date_literal for name in DATE_LITERALS | DATE_N_LITERALS},
    }
    PRIMARY_PARSERS: t.ClassVar = {
        **parser.Parser.PRIMARY_PARSERS,
        DATETIME_TOKEN: lambda self, token: self.expression(DateTimeLiteral(this=token.text), token),
    }

    def raise_error(self, message: str, token: Token | None = None) -> None:
        token = token or self._curr or self._prev
        self.soql_error_start = token.start if token else None
        if token:
            super().raise_error(message, token)
        else:
            super().raise_error(message)

    def _parse_query_modifiers(self, this):  # type: ignore[override]
        if not isinstance(this, exp.Select):
            return this
        rank = 0
        while self._curr and self._curr.token_type in SOQL_CLAUSES:
            token = self._curr
            clause_rank, parse = SOQL_CLAUSES[token.token_type]
            if clause_rank <= rank:
                self.raise_error(f"{token.text.upper()} is out of place; SOQL clause order is {CLAUSE_ORDER_TEXT}", token)
            rank = clause_rank
            key, expression = parse(self)
            if expression:
                this.set(key, expression)
        return this

    def _parse_ordered(self, parse_method=None):  # type: ignore[override]
        ordered = super()._parse_ordered(parse_method)
        if ordered is not None:
            prev = self._tokens[self._index - 2 : self._index]
            words = [tok.text.upper() for tok in prev]
            if words == ["NULLS", "FIRST"] or words == ["NULLS", "LAST"]:
                ordered.set("nulls_first", words[1] == "FIRST")
                ordered.meta["soql_nulls"] = words[1]
        return ordered

    def _negate_range(self, this: exp.Expr | None = None) -> exp.Expr | None:
        negated = super()._negate_range(this)
        if isinstance(negated, exp.Not):
            negated.meta["soql_postfix_not"] = True  # written `x NOT IN (...)`, regenerate it that way
        return negated

    def _parse_range(self, this: exp.Expr | None = None) -> exp.Expr | None:
        this = super()._parse_range(this)
        token = self._curr
        if this is not None and token and token.token_type == TokenType.VAR:
            node = {"INCLUDES": Includes, "EXCLUDES": Excludes}.get(token.text.upper())
            if node:
                self._advance()
                if not self._match(TokenType.L_PAREN):
                    self.raise_error(f"{token.text.upper()} takes a parenthesised list of strings")
                values = self._parse_csv(self._parse_primary)
                self._match_r_paren()
                return self.expression(node(this=this, expressions=values), token)
        return this


# ---------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------


class SoqlGenerator(generator.Generator):
    TRANSFORMS: t.ClassVar = {
        **generator.Generator.TRANSFORMS,
        DateLiteral: lambda self, e: e.name + (f":{e.expression.name}" if e.expression else ""),
        DateTimeLiteral: lambda self, e: e.name,
        Fields: lambda self, e: f"FIELDS({e.name})",
        SecurityClause: lambda self, e: f"WITH {e.name}",
        UsingScope: lambda self, e: f"USING SCOPE {e.name}",
        ForClause: lambda self, e: e.name if e.name.startswith("UPDATE ") else f"FOR {e.name}",
        Includes: lambda self, e: f"{self.sql(e, 'this')} INCLUDES ({self.expressions(e, flat=True)})",
        Excludes: lambda self, e: f"{self.sql(e, 'this')} EXCLUDES ({self.expressions(e, flat=True)})",
        TypeOf: lambda self, e: self.soql_typeof_sql(e),
    }

    def select_sql(self, expression: exp.Select) -> str:
        parts = [f"SELECT {self.expressions(expression, flat=True)}", self.sql(expression, "from_").strip()]
        for key in ("soql_scope", "where", "soql_with", "group", "having", "order", "limit", "offset"):
            text = self.sql(expression, key).strip()
            if text:
                parts.append(text)
        for key in ("soql_for", "soql_update"):
            parts.extend(self.sql(node) for node in expression.args.get(key) or [])
        return " ".join(parts)

    def from_sql(self, expression: exp.From) -> str:
        return f"FROM {self.sql(expression, 'this')}"

    def table_sql(self, expression: exp.Table, sep: str = " AS ") -> str:
        name = ".".join(part.name for part in expression.parts)  # Account.Contacts in child subqueries
        alias = expression.alias
        return f"{name} {alias}" if alias else name

    def alias_sql(self, expression: exp.Alias) -> str:
        return f"{self.sql(expression, 'this')} {self.sql(expression, 'alias')}"

    def limit_sql(self, expression: exp.Limit, top: bool = False) -> str:
        return f"LIMIT {self.sql(expression, 'expression')}"

    def offset_sql(self, expression: exp.Offset) -> str:
        return f"OFFSET {self.sql(expression, 'expression')}"

    def where_sql(self, expression: exp.Where) -> str:
        return f"WHERE {self.sql(expression, 'this')}"

    def having_sql(self, expression: exp.Having) -> str:
        return f"HAVING {self.sql(expression, 'this')}"

    def order_sql(self, expression: exp.Order, flat: bool = False) -> str:
        return f"ORDER BY {self.expressions(expression, flat=True)}"

    def ordered_sql(self, expression: exp.Ordered) -> str:
        text = self.sql(expression, "this")
        desc = expression.args.get("desc")
        text += " DESC" if desc else (" ASC" if desc is False else "")
        nulls = expression.meta.get("soql_nulls") if expression.meta else None
        return f"{text} NULLS {nulls}" if nulls else text

    def group_sql(self, expression: exp.Group) -> str:
        return f"GROUP BY {self.expressions(expression, flat=True)}" + "".join(
            f"{'GROUP BY ' if not expression.expressions else ', '}{self.sql(node)}"
            for key in ("rollup", "cube")
            for node in expression.args.get(key) or []
        )

    def rollup_sql(self, expression: exp.Rollup) -> str:
        return f"ROLLUP({self.expressions(expression, flat=True)})"

    def cube_sql(self, expression: exp.Cube) -> str:
        return f"CUBE({self.expressions(expression, flat=True)})"

    def soql_typeof_sql(self, expression: TypeOf) -> str:
        branches = " ".join(
            f"WHEN {self.sql(when, 'this')} THEN {self.expressions(when, flat=True)}"
            for when in expression.args["ifs"]
        )
        default = expression.args.get("default")
        tail = f" ELSE {self.expressions(sqls=[self.sql(d) for d in default], flat=True)}" if default else ""
        return f"TYPEOF {self.sql(expression, 'this')} {branches}{tail} END"

    def subquery_sql(self, expression: exp.Subquery, sep: str = " AS ") -> str:
        alias = expression.alias
        text = f"({self.sql(expression, 'this')})"
        return f"{text} {alias}" if alias else text

    def escape_str(self, text: str, escape_backslash: bool = True, delimiter: str | None = None,
                   escaped_delimiter: str | None = None, is_byte_string: bool = False) -> str:
        escaped = super().escape_str(text, escape_backslash, delimiter, escaped_delimiter, is_byte_string)
        # the tokenizer keeps LIKE escapes \% and \_ as two characters: write them back unchanged
        return escaped.replace("\\\\%", "\\%").replace("\\\\_", "\\_")

    def boolean_sql(self, expression: exp.Boolean) -> str:
        return "true" if expression.this else "false"  # SOQL's documented spelling

    def null_sql(self, *_: t.Any) -> str:
        return "null"

    def neq_sql(self, expression: exp.NEQ) -> str:
        return self.binary(expression, "!=")

    def not_sql(self, expression: exp.Not) -> str:
        inner = expression.this
        if expression.meta.get("soql_postfix_not") and isinstance(inner, exp.In):
            return f"{self.sql(inner, 'this')} NOT IN {self.in_sql(inner)[len(self.sql(inner, 'this')) + 4:]}"
        return f"NOT {self.sql(expression, 'this')}"


# ---------------------------------------------------------------------------------------------------
# Dialect
# ---------------------------------------------------------------------------------------------------


class Soql(Dialect):
    """Salesforce Object Query Language. Registered with sqlglot as ``soql``."""

    NORMALIZATION_STRATEGY = NormalizationStrategy.CASE_INSENSITIVE
    NULL_ORDERING = "nulls_are_small"
    NORMALIZE_FUNCTIONS = False  # keep convertCurrency / toLabel as written

    Tokenizer = SoqlTokenizer
    Parser = SoqlParser
    Generator = SoqlGenerator


_DIALECT = Soql()


def parse_soql(sql: str) -> exp.Expr:
    """Parse one SOQL statement. Raises only :class:`SoqlSyntaxError` (never a crash)."""
    if not sql or not sql.strip():
        raise SoqlSyntaxError("The query is empty", 0, sql)
    try:
        token_list = _DIALECT.tokenize(sql)
    except TokenError:
        start = unterminated_quote(sql)
        message = "Unterminated string: a ' is never closed" if start is not None else "Could not read the query"
        raise SoqlSyntaxError(message, start, sql) from None
    except Exception as error:  # defensive: the scanner must never take the guard down
        raise SoqlSyntaxError(f"Could not read the query: {error}", None, sql) from None

    soql_parser = _DIALECT.parser(error_level=ErrorLevel.IMMEDIATE)
    try:
        statements = soql_parser.parse(token_list, sql)
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        message = friendly_parse_message(first.get("description") or _first_line(str(error)))
        position = getattr(soql_parser, "soql_error_start", None)
        raise SoqlSyntaxError(message, position, sql) from None
    except Exception as error:  # sqlglot internals on hostile input: report, don't crash
        raise SoqlSyntaxError(f"Could not parse the query: {error}", None, sql) from None

    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        semicolon = next((tok.start for tok in token_list if tok.token_type == TokenType.SEMICOLON), None)
        raise SoqlSyntaxError("SOQL takes exactly one statement (no ';' separated lists)", semicolon, sql)
    return statements[0]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def to_soql(expression: exp.Expr) -> str:
    """Regenerate SOQL text from a parsed (or rewritten) tree."""
    return _DIALECT.generate(expression)


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


def node_position(node: exp.Expr | None) -> int | None:
    """0-based offset where a node's text starts: the leftmost token in its subtree, else (for nodes
    with no token of their own, like DISTINCT) the start of its nearest positioned ancestor."""
    current = node
    while current is not None:
        starts = [sub.meta_get("start") for sub in current.walk() if sub._meta]
        starts = [int(start) for start in starts if start is not None]
        if starts:
            return min(starts)
        current = current.parent
    return None


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
