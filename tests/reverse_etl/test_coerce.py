"""Type coercion per CRM field type (canonry/reverse_etl/coerce.py), as data: (type, value, written or error)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from canonry.reverse_etl.coerce import DataError, coerce

WRITTEN = [
    ("text:5", "abc", "abc"),
    ("text:5", 12, "12"),
    ("email", " ada@example.com ", "ada@example.com"),
    ("date", date(2026, 3, 1), "2026-03-01"),
    ("date", datetime(2026, 3, 1, 12, 30), "2026-03-01"),
    ("date", "2026-03-01T10:00:00Z", "2026-03-01"),
    ("number", Decimal("12.50"), 12.5),
    ("number", "42", 42),
    ("number", 3.0, 3),
    ("bool", "yes", True),
    ("bool", 0, False),
    ("enum:open|won|lost", "won", "won"),
    ("id", 123, "123"),
    ("number", None, None),
    (None, {"any": "thing"}, {"any": "thing"}),
]
REFUSED = [
    ("text:5", "abcdef", "6 characters, the field holds at most 5"),
    ("email", "not-an-email", "not an email address"),
    ("date", "03/01/2026", "not a date"),
    ("number", "12 apples", "not a number"),
    ("number", "NaN", "not a finite number"),
    ("number", True, "a boolean where a number is expected"),
    ("bool", "maybe", "not a boolean"),
    ("enum:open|won|lost", "Won", "not a value of the picklist (open, won, lost)"),
]


@pytest.mark.parametrize(("kind", "value", "written"), WRITTEN)
def test_written(kind, value, written):
    assert coerce(kind, value) == written


@pytest.mark.parametrize(("kind", "value", "message"), REFUSED)
def test_refused_with_a_message(kind, value, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        coerce(kind, value)
