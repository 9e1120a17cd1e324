"""One API resource per canonical table, and the JSON Schema of its records: all derived from the contract
(canonry/canonical.py), never restated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canonry.canonical import ENUMS, REQUIRED_COLUMNS, TABLES, column_doc, column_kind, columns, id_column

API_VERSION = "v1"

# JSON Schema of each column kind (a decimal is served as a string: amounts stay exact).
KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "timestamp": {"type": "string", "format": "date-time"},
    "json_list": {"type": "array"},
    "json_object": {"type": "object"},
}


@dataclass(frozen=True)
class Resource:
    table: str     # ats_candidates
    family: str    # ats
    name: str      # candidates

    @property
    def path(self) -> str:
        return f"/{API_VERSION}/{self.family}/{self.name}"

    @property
    def id_column(self) -> str:
        return id_column(self.table)

    @property
    def columns(self) -> tuple[str, ...]:
        return columns(self.table)

    @property
    def scope(self) -> str:
        return f"{self.family}:read"

    @property
    def schema_name(self) -> str:
        """`ats_candidates` -> `AtsCandidate` (the OpenAPI component)."""
        singular = self.id_column.removesuffix("_id")
        return self.family.capitalize() + "".join(part.capitalize() for part in singular.split("_"))

    def column_schema(self, column: str) -> dict[str, Any]:
        schema = {**KIND_SCHEMAS[column_kind(self.table, column)], **classification(self.table, column)}
        enum = ENUMS.get((self.table, column))
        if enum:
            schema["enum"] = list(enum)
        if column == self.id_column or column in REQUIRED_COLUMNS:
            return schema
        schema["type"] = [schema["type"], "null"]
        if enum:
            schema["enum"] = [*enum, None]
        return schema

    def record_schema(self, **extra: dict[str, Any]) -> dict[str, Any]:
        """Every field may be left out by field selection (`fields=`) except the id; `extra` properties
        (e.g. remote_data on a single record) come after the contract's."""
        return {"type": "object", "required": [self.id_column],
                "properties": {**{c: self.column_schema(c) for c in self.columns}, **extra},
                "additionalProperties": False}


def classification(table: str, column: str) -> dict[str, str]:
    """The contract's data class and owner of a column, as OpenAPI extensions (docs/GOVERNANCE.md)."""
    doc = column_doc(table, column)
    return {"x-classification": doc.classification, "x-owner": doc.owner}


def _resource(table: str) -> Resource:
    family, name = table.split("_", 1)
    return Resource(table, family, name)


RESOURCES: tuple[Resource, ...] = tuple(_resource(table) for table in TABLES)
EVENTS_SCOPE = "events:manage"   # subscribers of outbound change events (canonry/events)
EVENTS_PATH = f"/{API_VERSION}/events/subscribers"
SCOPES: tuple[str, ...] = tuple(sorted({r.scope for r in RESOURCES} | {EVENTS_SCOPE}))

DEFAULT_PORT = 8765
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
