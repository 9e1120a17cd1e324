"""A small, real SOQL subset for the Salesforce sandbox: tokenizer and parser (evaluation: `soql_eval.py`).

Supported: `SELECT <fields | COUNT()> FROM <Object> [WHERE ...] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...]
[LIMIT n] [OFFSET n]`. Fields may be relationship paths (`Account.Name`, `Owner.Email`, `What.Name`).
WHERE supports `= != <> < <= > >=`, `LIKE` (`%`, `_`), `IN (...)`, `NOT IN (...)`, `AND`, `OR`, `NOT`,
parentheses; literals: 'strings' (backslash escapes), numbers, true/false, null, dates `2025-01-01`,
unquoted datetimes `2025-01-01T00:00:00Z` / `…+00:00` / `…+0000` (optional fraction) and the date
literals TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n.
String comparisons are case-insensitive, as in Salesforce. Errors carry Salesforce's error codes:
`MALFORMED_QUERY` for syntax, `INVALID_TYPE` for an unknown object, `INVALID_FIELD` for unknown fields
or a literal of the wrong type.

The parser knows objects only through a `Schema` callback (object name -> FieldInfo by lower-case
name), so it stands alone; the simulator supplies schema, candidate iteration and relationship lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str                      # id, string, boolean, datetime, date, int, double, currency, percent, reference, …
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None


class Schema:
    """What the parser knows of objects: {object name: {lower-case field name: FieldInfo}}."""

    def __init__(self, objects: dict[str, dict[str, FieldInfo]]) -> None:
        self.objects = objects
        self.by_lower = {name.lower(): name for name in objects}

    def name(self, written: str) -> str | None:
        return self.by_lower.get(written.lower())

    def __call__(self, written: str) -> dict[str, FieldInfo] | None:
        name = self.name(written)
        return self.objects[name] if name else None


# -- tokenizer ------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
""", re.VERBOSE)


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos:pos + 20]}'")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


# -- syntax tree ----------------------------------------------------------------------------------------
@dataclass
class FieldPath:
    text: str                       # as written
    parts: tuple[str, ...]          # canonical names along the path (relationship names, then the field)
    info: FieldInfo                 # the final field
    hops: tuple[FieldInfo, ...] = ()  # reference fields walked (their relationship names are parts[:-1])


@dataclass
class Comparison:
    path: FieldPath
    op: str                         # = != < <= > >= LIKE IN NOTIN
    value: Any                      # python value (or list for IN)


@dataclass
class BoolOp:
    op: str                         # AND / OR / NOT
    items: list


@dataclass
class OrderItem:
    path: FieldPath
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    object_name: str
    fields: list[FieldPath]
    count_only: bool = False
    where: Any = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0

    def modstamp_lower_bound(self, names: tuple[str, ...] = ("SystemModstamp", "LastModifiedDate")) -> datetime | None:
        """A lower bound on SystemModstamp the WHERE clause demands at the top level (an AND-conjunct)."""
        conjuncts = self.where.items if isinstance(self.where, BoolOp) and self.where.op == "AND" else [self.where]
        bounds = [c.value for c in conjuncts if isinstance(c, Comparison) and not c.path.hops
                  and c.path.info.name in names and c.op in (">", ">=", "=") and isinstance(c.value, datetime)]
        return max(bounds) if bounds else None

    def where_is_only_bound(self) -> bool:
        """True when the WHERE clause is nothing but modstamp bounds (counts can skip the predicate)."""
        conjuncts = self.where.items if isinstance(self.where, BoolOp) and self.where.op == "AND" else [self.where]
        return all(isinstance(c, Comparison) and not c.path.hops and c.path.info.name == "SystemModstamp"
                   and c.op in (">=",) for c in conjuncts)


_DATE_LITERALS = {"TODAY": 0, "YESTERDAY": -1, "TOMORROW": 1}
_RANGE_LITERALS = {"LAST_N_DAYS", "NEXT_N_DAYS"}
_TEMPORAL = {"datetime", "date"}
NUMERIC_TYPES = {"int", "double", "currency", "percent", "long"}
_KEYWORDS = {"SELECT", "FROM", "WHERE", "ORDER", "BY", "LIMIT", "OFFSET", "AND", "OR", "NOT", "IN", "LIKE",
             "ASC", "DESC", "NULLS", "FIRST", "LAST", "NULL", "TRUE", "FALSE", "COUNT"}


def parse_datetime(text: str) -> datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text).astimezone(UTC)


class Parser:
    def __init__(self, text: str, schema: Schema, now: datetime | None = None) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.schema = schema
        self.now = now or datetime.now(UTC)

    # token helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "ident" and token.text.upper() in words

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.i += 1
        return token

    def expect_keyword(self, word: str) -> None:
        token = self.take()
        if token.kind != "ident" or token.text.upper() != word:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}' (expecting '{word}')")

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}' (expecting '{text}')")

    # grammar
    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        raw_fields: list[str] = []
        count_only = False
        if self.keyword("COUNT") and self.peek(1) is not None and self.peek(1).text == "(":
            self.take(), self.expect("("), self.expect(")")
            count_only = True
        else:
            while True:
                token = self.take()
                if token.kind != "ident" or token.text.upper() in ("FROM",):
                    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
                raw_fields.append(token.text)
                if self.peek() is not None and self.peek().text == ",":
                    self.take()
                    continue
                break
        self.expect_keyword("FROM")
        object_token = self.take()
        fields_by_name = self.schema(object_token.text) if object_token.kind == "ident" else None
        if fields_by_name is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{object_token.text}' is not supported. If you are "
                            "attempting to use a custom object, be sure to append the '__c' after the entity name.")
        object_name = self.schema.name(object_token.text) or object_token.text
        self.object_name = object_name
        query = Query(object_name, [self.resolve(f) for f in raw_fields], count_only)
        if self.keyword("WHERE"):
            self.take()
            query.where = self.condition()
        if self.keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            while True:
                item = OrderItem(self.resolve(self.take_ident()))
                if self.keyword("ASC", "DESC"):
                    item.descending = self.take().text.upper() == "DESC"
                if self.keyword("NULLS"):
                    self.take()
                    item.nulls_last = self.take().text.upper() == "LAST"
                query.order_by.append(item)
                if self.peek() is not None and self.peek().text == ",":
                    self.take()
                    continue
                break
        if self.keyword("LIMIT"):
            self.take()
            query.limit = self.take_int()
        if self.keyword("OFFSET"):
            self.take()
            query.offset = self.take_int()
            if query.offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek().text}'")
        return query

    def take_ident(self) -> str:
        token = self.take()
        if token.kind != "ident":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
        return token.text

    def take_int(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}' (expecting a number)")
        return int(token.text)

    def resolve(self, text: str) -> FieldPath:
        """`Account.Name` on Contact -> walk the relationship, validate every segment."""
        segments = text.split(".")
        current = self.object_name
        if len(segments) > 1 and segments[0].lower() == current.lower():
            segments = segments[1:]   # `Contact.Name` qualified by the queried object itself
        fields = self.schema(current) or {}
        parts, hops = [], []
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            if last:
                info = fields.get(segment.lower())
                if info is None:
                    raise SoqlError("INVALID_FIELD", f"No such column '{segment}' on entity '{current}'. If you are "
                                    "attempting to use a custom field, be sure to append the '__c' after the custom "
                                    "field name. Please reference your WSDL or the describe call for the "
                                    "appropriate names.")
                parts.append(info.name)
                return FieldPath(text, tuple(parts), info, tuple(hops))
            ref = next((f for f in fields.values() if f.relationship_name
                        and f.relationship_name.lower() == segment.lower()), None)
            if ref is None:
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{segment}' in field path. If you "
                                "are attempting to use a custom relationship, be sure to append the '__r' after the "
                                "custom relationship name.")
            parts.append(ref.relationship_name)
            hops.append(ref)
            current = ref.reference_to[0]
            fields = self.schema(current) or {}
        raise SoqlError("MALFORMED_QUERY", f"unexpected field path '{text}'")

    def condition(self):
        items = [self.conjunction()]
        while self.keyword("OR"):
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def conjunction(self):
        items = [self.negation()]
        while self.keyword("AND"):
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def negation(self):
        if self.keyword("NOT"):
            self.take()
            return BoolOp("NOT", [self.negation()])
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.condition()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.resolve(self.take_ident())
        token = self.take()
        if token.kind == "op":
            op = "!=" if token.text == "<>" else token.text
            return Comparison(path, op, self.literal(path))
        word = token.text.upper() if token.kind == "ident" else ""
        if word == "LIKE":
            value = self.literal(path)
            if not isinstance(value, str):
                raise SoqlError("INVALID_FIELD", f"invalid operator on field: {path.text}: LIKE needs a string")
            return Comparison(path, "LIKE", value)
        negated = False
        if word == "NOT":
            self.expect_keyword("IN")
            negated, word = True, "IN"
        if word == "IN":
            self.expect("(")
            values = [self.literal(path)]
            while self.peek() is not None and self.peek().text == ",":
                self.take()
                values.append(self.literal(path))
            self.expect(")")
            return Comparison(path, "NOTIN" if negated else "IN", values)
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}' (expecting an operator)")

    def literal(self, path: FieldPath):
        token = self.take()
        ftype = path.info.type
        kind = token.kind
        if kind == "ident" and token.text.upper() == "NULL":
            return None
        if kind == "ident" and token.text.upper() in ("TRUE", "FALSE"):
            if ftype != "boolean":
                raise self._type_error(path)
            return token.text.upper() == "TRUE"
        if kind == "string":
            if ftype in _TEMPORAL or ftype in NUMERIC_TYPES or ftype == "boolean":
                raise self._type_error(path)
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if kind == "datetime":
            if ftype not in _TEMPORAL:
                raise self._type_error(path)
            return parse_datetime(token.text)
        if kind == "date":
            if ftype not in _TEMPORAL:
                raise self._type_error(path)
            day = date.fromisoformat(token.text)
            return day if ftype == "date" else datetime(day.year, day.month, day.day, tzinfo=UTC)
        if kind == "number":
            if ftype not in NUMERIC_TYPES:
                raise self._type_error(path)
            return float(token.text) if "." in token.text else int(token.text)
        if kind == "ident" and token.text.upper() in _DATE_LITERALS | dict.fromkeys(_RANGE_LITERALS, 0):
            if ftype not in _TEMPORAL:
                raise self._type_error(path)
            name = token.text.upper()
            today = self.now.date()
            if name in _RANGE_LITERALS:
                self.expect(":")
                days = self.take_int()
                start = today - timedelta(days=days) if name == "LAST_N_DAYS" else today
                end = today + timedelta(days=1) if name == "LAST_N_DAYS" else today + timedelta(days=days + 1)
                return DateRange(start, end, ftype)
            day = today + timedelta(days=_DATE_LITERALS[name])
            return DateRange(day, day + timedelta(days=1), ftype)
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")

    @staticmethod
    def _type_error(path: FieldPath) -> SoqlError:
        expected = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}.get(path.info.type, path.info.type)
        return SoqlError("INVALID_FIELD", f"value of filter criterion for field '{path.info.name}' must be of type "
                         f"{expected} and should not be enclosed in quotes")


@dataclass(frozen=True)
class DateRange:
    """A date literal covering whole days: `= TODAY` is a range, `> TODAY` is after its end."""

    start: date
    end: date
    ftype: str

    def bounds(self):
        if self.ftype == "date":
            return self.start, self.end
        return (datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC),
                datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC))


def parse(text: str, schema: Schema, now: datetime | None = None) -> Query:
    return Parser(text, schema, now).parse()
