"""The Salesforce catalog the SOQL rules check against: objects, fields, relationships, indexes, sizes.

Built from Salesforce ``describe`` results (``GET /services/data/vXX.X/sobjects/<Object>/describe``) and
record counts (``GET /services/data/vXX.X/limits/recordCount?sObjects=...``), cached as JSON in the same
shape (a list of trimmed describe dicts), so a cache file and the shipped default load the same way.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_CATALOG_PATH = Path(__file__).with_name("catalog_default.json")
API_VERSION = "v62.0"
LARGE_OBJECT_ROWS = 100_000  # Salesforce's "large object" selectivity thresholds start around here

#: fields Salesforce indexes on every object (plus lookups, external ids, unique and idLookup fields)
STANDARD_INDEXED_FIELDS: frozenset[str] = frozenset(
    {"id", "name", "ownerid", "createddate", "systemmodstamp", "recordtypeid"}
)

#: standard objects fetched by default from an org (custom objects are always fetched)
STANDARD_OBJECTS: frozenset[str] = frozenset(
    """Account Contact Lead Opportunity OpportunityStage User Task Event Note Profile RecordType UserRole
    Group""".split()
)

#: the describe keys a cache keeps per field (everything the rules read, nothing else)
FIELD_KEYS = (
    "name", "label", "type", "referenceTo", "relationshipName", "externalId", "idLookup", "unique",
    "filterable", "sortable", "groupable", "nillable", "custom",
)


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    filterable: bool = True

    @property
    def indexed(self) -> bool:
        """True when Salesforce keeps an index on this field (usable for a selective filter)."""
        return (
            self.name.lower() in STANDARD_INDEXED_FIELDS
            or self.type in ("id", "reference")
            or self.external_id
            or self.unique
            or self.id_lookup
        )

    @classmethod
    def from_describe(cls, raw: dict[str, Any]) -> FieldInfo:
        return cls(
            name=raw["name"],
            type=raw.get("type", "string"),
            reference_to=tuple(raw.get("referenceTo") or ()),
            relationship_name=raw.get("relationshipName"),
            external_id=bool(raw.get("externalId")),
            id_lookup=bool(raw.get("idLookup")),
            unique=bool(raw.get("unique")),
            filterable=raw.get("filterable", True) is not False,
        )


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    fields: dict[str, FieldInfo]  # lower-case field name -> field
    parents: dict[str, FieldInfo]  # lower-case relationship name (Owner, Account) -> lookup field
    children: dict[str, str]  # lower-case child relationship name (Contacts) -> child object name
    record_count: int | None = None
    children_written: tuple[str, ...] = ()  # child relationship names as Salesforce spells them

    def field(self, name: str) -> FieldInfo | None:
        return self.fields.get(name.lower())

    def parent(self, relationship: str) -> FieldInfo | None:
        return self.parents.get(relationship.lower())

    def child(self, relationship: str) -> str | None:
        return self.children.get(relationship.lower())

    @property
    def indexed_fields(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.indexed]


@dataclass
class Catalog:
    objects: dict[str, ObjectInfo] = field(default_factory=dict)  # lower-case name -> object
    describes: list[dict[str, Any]] = field(default_factory=list, repr=False)
    record_counts: dict[str, int] = field(default_factory=dict)
    large_object_rows: int = LARGE_OBJECT_ROWS

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_describes(
        cls,
        describes: list[dict[str, Any]],
        record_counts: dict[str, int] | None = None,
        large_object_rows: int = LARGE_OBJECT_ROWS,
    ) -> Catalog:
        """Build from Salesforce describe results (one dict per sObject) and per-object row counts."""
        counts = {k.lower(): int(v) for k, v in (record_counts or {}).items()}
        objects: dict[str, ObjectInfo] = {}
        trimmed: list[dict[str, Any]] = []
        for describe in describes:
            name = describe["name"]
            fields = [FieldInfo.from_describe(f) for f in describe.get("fields", [])]
            parents = {f.relationship_name.lower(): f for f in fields if f.relationship_name}
            children = {
                rel["relationshipName"].lower(): rel["childSObject"]
                for rel in describe.get("childRelationships", [])
                if rel.get("relationshipName")
            }
            objects[name.lower()] = ObjectInfo(
                name=name,
                fields={f.name.lower(): f for f in fields},
                parents=parents,
                children=children,
                record_count=counts.get(name.lower()),
                children_written=tuple(
                    rel["relationshipName"] for rel in describe.get("childRelationships", [])
                    if rel.get("relationshipName")
                ),
            )
            trimmed.append(_trim_describe(describe))
        original_counts = {k: int(v) for k, v in (record_counts or {}).items()}
        return cls(objects, trimmed, original_counts, large_object_rows)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Catalog:
        return cls.from_describes(
            data["describes"], data.get("record_counts"), data.get("large_object_rows", LARGE_OBJECT_ROWS)
        )

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def default(cls) -> Catalog:
        """The shipped catalog of standard objects (no org needed)."""
        return _default_catalog()

    @classmethod
    def from_sandbox(
        cls,
        base_url: str,
        token: str,
        objects: list[str] | None = None,
        api_version: str = API_VERSION,
        cache_path: str | Path | None = None,
        session: Any = None,
        timeout: float = 30.0,
    ) -> Catalog:
        """Fetch describes (and record counts) from a Salesforce org or the local sandbox.

        ``objects`` defaults to the queryable standard objects in :data:`STANDARD_OBJECTS` plus every
        queryable custom object listed by ``GET /sobjects``. When ``cache_path``
        is given the result is written there (see :meth:`save`), so later runs can :meth:`load` it.
        """
        import requests

        http = session or requests.Session()
        root = f"{base_url.rstrip('/')}/services/data/{api_version}"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

        def get(path: str, **params: Any) -> Any:
            response = http.get(f"{root}{path}", headers=headers, params=params or None, timeout=timeout)
            response.raise_for_status()
            return response.json()

        if objects is None:  # the standard objects we model, plus every queryable custom object
            listing = get("/sobjects")
            objects = [
                o["name"] for o in listing.get("sobjects", [])
                if o.get("queryable", True) and (o["name"] in STANDARD_OBJECTS or o.get("custom"))
            ]
        describes = [get(f"/sobjects/{name}/describe") for name in objects]
        counts: dict[str, int] = {}
        for start in range(0, len(objects), 50):  # keep the query string short
            chunk = objects[start : start + 50]
            body = get("/limits/recordCount", sObjects=",".join(chunk))
            counts.update({row["name"]: int(row["count"]) for row in body.get("sObjects", [])})
        catalog = cls.from_describes(describes, counts)
        if cache_path:
            catalog.save(cache_path)
        return catalog

    # -- persistence -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "api_version": API_VERSION,
            "saved_at": int(time.time()),
            "large_object_rows": self.large_object_rows,
            "record_counts": self.record_counts,
            "describes": self.describes,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
        return path

    # -- lookups -----------------------------------------------------------------------------------
    def object(self, name: str) -> ObjectInfo | None:
        return self.objects.get(name.lower())

    def is_large(self, name: str) -> bool:
        obj = self.object(name)
        return bool(obj and obj.record_count is not None and obj.record_count > self.large_object_rows)

    def summary_lines(self, max_fields: int = 40) -> list[str]:
        """One line per object for an LLM prompt: name, size, indexed fields, fields, relationships."""
        lines = []
        for obj in self.objects.values():
            size = f"~{obj.record_count:,} rows" if obj.record_count is not None else "size unknown"
            large = ", LARGE" if self.is_large(obj.name) else ""
            names = [f.name for f in obj.fields.values()][:max_fields]
            parents = [f"{f.relationship_name}->{'/'.join(f.reference_to)}" for f in obj.parents.values()]
            children = [f"{rel}({child})" for rel, child in obj.children.items()]
            lines.append(
                f"{obj.name} ({size}{large}); indexed: {', '.join(obj.indexed_fields)}; fields: "
                f"{', '.join(names)}; parents: {', '.join(parents) or '-'}; "
                f"children: {', '.join(children) or '-'}"
            )
        return lines


def _trim_describe(describe: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": describe["name"],
        "fields": [{k: f[k] for k in FIELD_KEYS if k in f} for f in describe.get("fields", [])],
        "childRelationships": [
            {k: rel.get(k) for k in ("childSObject", "field", "relationshipName")}
            for rel in describe.get("childRelationships", [])
        ],
    }


@lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return Catalog.load(DEFAULT_CATALOG_PATH)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog to use: an explicit cache file, ``CANONRY_SF_CATALOG``, or the shipped default."""
    chosen = path or os.environ.get("CANONRY_SF_CATALOG")
    if chosen:
        return _cached_file_catalog(str(Path(chosen).resolve()), Path(chosen).stat().st_mtime_ns)
    return Catalog.default()


@lru_cache(maxsize=8)
def _cached_file_catalog(path: str, mtime_ns: int) -> Catalog:  # mtime in the key: edits reload
    return Catalog.load(path)
