"""Evaluating a parsed SOQL query (`soql.py`) over rendered records: typed comparisons, WHERE, ORDER BY,
the projection of the selected fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from canonry.sandbox.salesforce.soql import (
    NUMERIC_TYPES,
    BoolOp,
    DateRange,
    FieldPath,
    OrderItem,
    Query,
    parse_datetime,
)

Resolver = Callable[[str | None], dict | None]   # an id -> the referenced record (rendered), or None


def typed(value: Any, ftype: str):
    """A record's JSON value -> comparable python value for its field type."""
    if value is None:
        return None
    if ftype == "datetime":
        return parse_datetime(value) if isinstance(value, str) else value
    if ftype == "date":
        return date.fromisoformat(value[:10]) if isinstance(value, str) else value
    if ftype in NUMERIC_TYPES:
        return float(value)
    if isinstance(value, str):
        return value.lower()
    return value


def value_at(record: dict, path: FieldPath, resolve: Resolver) -> Any:
    current: dict | None = record
    for hop in path.hops:
        if current is None:
            return None
        current = resolve(current.get(hop.name))
    return None if current is None else current.get(path.info.name)


def _like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _compare(actual, op: str, expected, ftype: str) -> bool:
    if isinstance(expected, DateRange):
        low, high = expected.bounds()
        if actual is None:
            return op == "!="
        inside = low <= actual < high
        return {"=": inside, "!=": not inside, "<": actual < low, "<=": actual < high, ">": actual >= high,
                ">=": actual >= low}[op]
    if expected is None:
        return (actual is None) if op == "=" else (actual is not None) if op == "!=" else False
    expected = typed(expected, ftype) if not isinstance(expected, (datetime, date)) else expected
    if actual is None:
        return op == "!="
    if ftype == "datetime" and isinstance(expected, datetime):
        actual = actual.replace(microsecond=actual.microsecond // 1000 * 1000)
    try:
        return {"=": actual == expected, "!=": actual != expected, "<": actual < expected,
                "<=": actual <= expected, ">": actual > expected, ">=": actual >= expected}[op]
    except TypeError:
        return False


def matches(node, record: dict, resolve: Resolver) -> bool:
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.op == "AND":
            return all(matches(n, record, resolve) for n in node.items)
        if node.op == "OR":
            return any(matches(n, record, resolve) for n in node.items)
        return not matches(node.items[0], record, resolve)
    ftype = node.path.info.type
    actual = typed(value_at(record, node.path, resolve), ftype)
    if node.op == "LIKE":
        return actual is not None and _like(str(actual), node.value)
    if node.op in ("IN", "NOTIN"):
        found = any(_compare(actual, "=", v, ftype) for v in node.value)
        return found if node.op == "IN" else (actual is not None and not found)
    return _compare(actual, node.op, node.value, ftype)


def sort_key(order: list[OrderItem], resolve: Resolver) -> Callable[[dict], tuple]:
    """A key for `sorted` honouring ASC/DESC and NULLS FIRST/LAST (default: nulls first ascending)."""
    def key(record: dict) -> tuple:
        parts = []
        for item in order:
            value = typed(value_at(record, item.path, resolve), item.path.info.type)
            nulls_last = item.nulls_last if item.nulls_last is not None else item.descending
            is_null = value is None
            null_rank = (1 if is_null else 0) if nulls_last else (0 if is_null else 1)
            if item.descending:
                null_rank = -null_rank
                parts.append((null_rank, _Reverse(value) if not is_null else _Reverse(0)))
            else:
                parts.append((null_rank, value if not is_null else 0))
        return tuple(parts)
    return key


class _Reverse:
    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and other.value == self.value


def project(record: dict, query: Query, resolve: Resolver, attributes: Callable[[str, dict], dict]) -> dict:
    """A result row in Salesforce's shape: attributes, then the selected fields; relationship fields as
    nested objects (null when the reference is empty)."""
    out: dict = {"attributes": attributes(query.object_name, record)}
    for path in query.fields:
        if not path.hops:
            out[path.info.name] = record.get(path.info.name)
            continue
        target, current = out, record
        for depth, hop in enumerate(path.hops):
            rel = path.parts[depth]
            referenced = resolve(current.get(hop.name)) if current is not None else None
            if referenced is None:
                target.setdefault(rel, None)
                break
            node = target.get(rel)
            if node is None:
                node = {"attributes": attributes(referenced["attributes"]["type"], referenced)}
                target[rel] = node
            target, current = node, referenced
        else:
            target[path.info.name] = current.get(path.info.name)
    return out
