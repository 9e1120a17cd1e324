"""SOQL's vocabulary and the expression nodes SQL lacks, as data for the SOQL dialect (soql_dialect.py),
its shape check (soql_shape.py) and the SOQL rules (rules_soql.py)."""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.tokens import TokenType

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
