"""What a provider writer (`sources/<slug>/actions.py`) gets and returns; part of the kit sources may import.

A writer module exposes `BATCH_SIZE` (the most records the engine hands it at once: the provider's batch
limit) and `writer(runtime, object_name)` returning an object with

* `write(records: list[WriteRecord]) -> list[WriteOutcome]` — one outcome per record, any order; a
  per-record refusal is an outcome with `ok=False` and the provider's message; a failure of the whole
  request (auth, permission, retries exhausted) raises `CanonryError`;
* `read(records: list[WriteRecord]) -> dict[record_key, dict]` — the provider's current values of the
  records' fields (for records with an `external_id`), used to settle records left in doubt by a crash;
* `remove(records, hard: bool) -> list[WriteOutcome]` — archive (hard=False) or delete the records (by
  `external_id`); a record already gone counts as removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass
class WriteRecord:
    record_key: str                 # the canonical id (the model's key)
    external_id: str | None         # the record's id at the provider; None: create it (upsert by external id)
    fields: dict[str, Any]          # provider field -> desired value (None clears)
    idempotency_key: str            # hash of record key + version: the same version always has the same key
    operation: str = "update"       # insert | update | delete (the diff's view; on_delete clear: null fields)
    match: tuple[str, str] | None = None   # (field, value): address the record by a natural key instead
    create: bool = True             # may a record the provider lacks be created (False: mode `update`)


@dataclass
class WriteOutcome:
    record_key: str
    ok: bool
    provider_id: str | None = None
    message: str | None = None
    details: dict = field(default_factory=dict)


def comparable(value: Any) -> str | None:
    """One spelling per value across providers (HubSpot sends strings, Salesforce numbers): `42`, `42.0`,
    `"42"` and `Decimal("42")` compare equal; None and "" are both empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def json_value(value: Any) -> Any:
    """A model value as JSON can carry it (DuckDB hands back Decimal, numpy scalars, dates)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
