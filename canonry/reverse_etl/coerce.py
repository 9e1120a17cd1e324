"""Type coercion of model values into what a CRM field accepts; a value that cannot be represented is the
row's `data_error` (the record is not sent; its message says field, value and why).

Field types come from each writer's `FIELDS` catalogue (`sources/<slug>/actions.py`): `text:<max length>`,
`email`, `date` (YYYY-MM-DD), `number`, `bool`, `id`, `enum:<v1>|<v2>|...` (a picklist).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class DataError(ValueError):
    """This value cannot be written to this field."""


def _text(value: Any, limit: int) -> str:
    text = str(value)
    if len(text) > limit:
        raise DataError(f"{len(text)} characters, the field holds at most {limit}")
    return text


def _email(value: Any) -> str:
    text = str(value).strip()
    if not EMAIL.match(text):
        raise DataError("not an email address")
    return text


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise DataError("not a date (YYYY-MM-DD)") from None


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise DataError("a boolean where a number is expected")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise DataError("not a number") from None
    if not number.is_finite():
        raise DataError("not a finite number")
    return int(number) if number == number.to_integral_value() else float(number)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise DataError("not a boolean")


def _enum(value: Any, allowed: list[str]) -> str:
    text = str(value)
    if text not in allowed:
        raise DataError(f"not a value of the picklist ({', '.join(allowed)})")
    return text


def coerce(kind: str | None, value: Any) -> Any:
    """`value` as the field of this type takes it; None stays None (clears the field)."""
    if value is None or kind is None:
        return value
    name, _, argument = kind.partition(":")
    if name == "text":
        return _text(value, int(argument))
    if name == "email":
        return _email(value)
    if name == "date":
        return _date(value)
    if name == "number":
        return _number(value)
    if name == "bool":
        return _bool(value)
    if name == "enum":
        return _enum(value, argument.split("|"))
    if name == "id":
        return str(value)
    raise ValueError(f"unknown field type {kind!r}")
