"""A SOQL dialect for sqlglot: tokenizer, parser and generator subclasses plus SOQL-only expressions.

SOQL is much smaller than SQL, so the dialect works in two steps:

1. sqlglot's parser, narrowed to SOQL's clause order and extended with SOQL syntax (date literals,
   unquoted datetimes, ``FIELDS()``, ``TYPEOF``, ``INCLUDES``/``EXCLUDES``, ``USING SCOPE``,
   ``WITH SECURITY_ENFORCED``, ``FOR VIEW``/``FOR UPDATE``);
2. a whitelist pass (``check_soql_shape`` in soql_shape.py) that turns every construct SOQL does not have (joins, ``*``,
   arithmetic, CTEs, unknown functions, ...) into a :class:`SoqlSyntaxError` with a character position.

``parse_soql`` never raises anything but :class:`SoqlSyntaxError`; ``to_soql`` regenerates the text.
Needs the pure-Python sqlglot (no ``sqlglotc``): compiled classes cannot be subclassed.
"""

from __future__ import annotations

import typing as t

from sqlglot import exp, generator, parser, tokens
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokenizer_core import TokenizerCore
from sqlglot.tokens import Token, TokenType

from canonry.guard.soql_expressions import (
    DATE_LITERALS,
    DATE_N_LITERALS,
    DATETIME_RE,
    DATETIME_TOKEN,
    FIELDS_KINDS,
    FOR_KINDS,
    SCOPES,
    UPDATE_KINDS,
    WITH_KINDS,
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
from canonry.guard.verdict import friendly_parse_message, unterminated_quote

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
