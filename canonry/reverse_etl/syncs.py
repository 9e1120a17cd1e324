"""Declarative syncs: `reverse_etl/<name>.yml`, one sync per file (the file name is the sync's name).

A sync names a dbt model (its rows: `record_key`, `connection_id`, `external_id` = the CRM id or null, then
any columns), a destination (provider, object, optionally one connection), a mode, a match key, field
mappings (model column -> CRM field), `on_delete` for `mirror`, a schedule and how many rejections park a
record. A model pushed without a sync file (`canonry push rev_<provider>__<object>`) gets `implied_sync`:
mode `upsert`, match `crm_id`, every non-key column mapped to the field of the same name.

The directory is `CANONRY_SYNCS_DIR` or `reverse_etl/` at the project root. The JSON Schema is
docs/sync.schema.json (`canonry validate --sync-schema`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from canonry import providers
from canonry.config import ConnectionsFile, Problem, _nearest_line, _schema_code, _schema_hint, make_problem
from canonry.config_file import load_file
from canonry.warehouse import PROJECT_ROOT

SYNC_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
KEY_COLUMNS = ("record_key", "connection_id", "external_id")


def _writers() -> tuple[str, ...]:
    """The providers reverse ETL can write to: those whose spec lists write-back objects."""
    return tuple(p for p in providers.slugs() if providers.spec(p).write_back)


class Destination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # No enum in the schema: a new writer is a provider's spec, not a regenerated docs/sync.schema.json.
    provider: str = Field(description="the provider written: one whose spec lists write-back objects "
                                      "(`write_back` in sources/<slug>/settings.py)")
    object: str = Field(description="the CRM object written: one of the provider's write-back objects")
    connection: str | None = Field(None, description="write only to this connection (default: every "
                                                     "connection the model's connection_id column names)")

    @field_validator("provider")
    @classmethod
    def _writer(cls, value: str) -> str:
        """One of the registry's writers, reported like any other choice (`invalid_choice`)."""
        writers = _writers()
        if value not in writers:
            expected = ", ".join(repr(w) for w in writers[:-1]) + f" or {writers[-1]!r}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Literal["crm_id", "external_id", "natural_key"] = Field(
        "crm_id", description="crm_id: the model's external_id column is the CRM id (null: create by external "
                              "id); external_id: always upsert by the CRM's external-id field keyed on record_key; "
                              "natural_key: a field that identifies the record (contact/person email, Pipedrive organization "
                              "name): HubSpot upserts by it, Salesforce and Pipedrive look it up before writing; "
                              "several CRM records with one key are that row's data_error")
    field: str | None = Field(None, description="natural_key: the CRM field (e.g. email)")
    column: str | None = Field(None, description="natural_key: the model column holding its value")


class SyncSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="the dbt model (in dbt/models/reverse_etl/) selecting the desired state")
    destination: Destination
    mode: Literal["update", "upsert", "insert", "mirror"] = Field(
        "upsert", description="update: only records the CRM has; upsert: create missing; insert: create only; "
                              "mirror: upsert, and on_delete what left the model")
    match: Match = Field(default_factory=Match)
    fields: dict[str, str] = Field(min_length=1, description="model column -> CRM field")
    on_delete: Literal["none", "archive", "delete", "clear"] = Field(
        "none", description="mirror only: what happens to a record that left the model")
    schedule: str | None = Field(None, description="cron expression (five fields); default: its connection's")
    max_attempts: int = Field(3, ge=1, description="rejections of one record before it is parked "
                                                  "(ops.push_quarantine) instead of retried")


@dataclass
class Sync:
    name: str
    spec: SyncSpec
    file: str | None = None
    lines: dict | None = None

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def provider(self) -> str:
        return self.spec.destination.provider

    @property
    def object(self) -> str:
        return self.spec.destination.object

    def line(self, *path) -> int | None:
        return _nearest_line(self.lines or {}, tuple(path))


def syncs_dir() -> Path:
    return Path(os.environ.get("CANONRY_SYNCS_DIR") or PROJECT_ROOT / "reverse_etl")


def json_schema() -> dict:
    schema = SyncSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Canonry reverse-ETL sync (reverse_etl/<name>.yml)"
    return schema


def parse_sync(path: Path) -> tuple[Sync | None, list[Problem]]:
    """Read a sync file with the connections file's hardened loader (size, encoding, aliases, depth, duplicate
    keys, tags), then schema-check it; every problem with its line, values masked like the connections file's."""
    name, file = path.stem, str(path)
    data, lines, refused = load_file(path)
    if refused is not None:
        return None, [Problem(file, refused.line, "", None, refused.message, refused.hint, refused.code)]
    if not SYNC_NAME.match(name):
        return None, [Problem(file, 1, "", name, "a sync's file name is its name: lower case, digits and _",
                              "rename the file", "invalid_name")]
    try:
        spec = SyncSpec.model_validate(data)
    except ValidationError as exc:
        return None, [make_problem(file, lines or {(): 1}, tuple(e["loc"]), e.get("input"), e["msg"],
                                   _schema_hint(e), _schema_code(e)) for e in exc.errors()]
    return Sync(name, spec, file, lines), []


def load_syncs(directory: Path | None = None) -> tuple[dict[str, Sync], list[Problem]]:
    directory = directory or syncs_dir()
    syncs, problems = {}, []
    for path in sorted(directory.glob("*.yml")) if directory.is_dir() else []:
        sync, found = parse_sync(path)
        problems += found
        if sync is not None:
            syncs[sync.name] = sync
    return syncs, problems


def implied_sync(model: str, columns: list[str], provider: str, object_name: str, deletes: str = "none") -> Sync:
    """The sync a model pushed by name gets: its columns are the CRM fields (the pre-sync contract)."""
    spec = SyncSpec(model=model, destination=Destination(provider=provider, object=object_name),
                    mode="upsert", fields={c: c for c in columns if c not in KEY_COLUMNS} or {"_": "_"},
                    on_delete="clear" if deletes == "clear" else "none")
    if deletes == "clear":
        spec.mode = "mirror"
    return Sync(model, spec)


def resolve(name: str, directory: Path | None = None) -> Sync | None:
    """The sync called `name`; else the one sync of the model `name`; None: no sync pushes that model (it is
    pushed by its implied sync). Several syncs of one model: the caller must name the sync."""
    from canonry.errors import ConfigError

    directory = directory or syncs_dir()
    path = directory / f"{name}.yml"
    if path.exists():
        sync, problems = parse_sync(path)
        if problems:
            raise ConfigError("the sync file is not valid:\n  " + "\n  ".join(p.render() for p in problems))
        return sync
    of_model = [s for s in load_syncs(directory)[0].values() if s.model == name]
    if len(of_model) > 1:
        raise ConfigError(f"{len(of_model)} syncs push the model {name}: "
                          f"{', '.join(sorted(s.name for s in of_model))}", hint="name the sync to push")
    return of_model[0] if of_model else None


# -- validation (needs the dbt manifest and the connections file) ---------------------------------------
def _writer(provider: str):
    from canonry.providers import source_module

    return source_module(provider, "actions")


def validate_sync(sync: Sync, manifest: dict, connections: ConnectionsFile | None) -> list[Problem]:
    """What the schema cannot see: the model exists, its columns and fields are writable, the connection may
    write the object, the mode/match/on_delete combination is one the CRM supports."""
    spec, out = sync.spec, []

    def problem(path: tuple, value, message: str, hint: str, code: str) -> None:
        out.append(Problem(sync.file or sync.name, sync.line(*path), ".".join(map(str, path)), value, message,
                           hint, code))

    node = manifest.get("nodes", {}).get(f"model.canonry.{spec.model}")
    if node is None or "models/reverse_etl/" not in node.get("original_file_path", ""):
        problem(("model",), spec.model, "no reverse-ETL dbt model of that name",
                "add dbt/models/reverse_etl/<model>.sql, or fix the name", "unknown_model")
    writer = _writer(spec.destination.provider)
    catalogue = writer.FIELDS.get(spec.destination.object)
    if catalogue is None:
        problem(("destination", "object"), spec.destination.object,
                f"{spec.destination.provider} has no writable object of that name",
                f"writable objects: {', '.join(writer.FIELDS)}", "write_not_supported")
        catalogue = {}
    for column, crm_field in spec.fields.items():
        if catalogue and crm_field not in catalogue and not writer.is_custom_field(crm_field):
            problem(("fields", column), crm_field,
                    f"{crm_field!r} is not a writable field of {spec.destination.provider} {spec.destination.object}",
                    f"writable: {', '.join(sorted(catalogue))} (or a custom field)", "field_not_writable")
    known_columns = set((node or {}).get("columns", {}))
    if node is not None and known_columns:
        for column in [*spec.fields, *([spec.match.column] if spec.match.column else [])]:
            if column not in known_columns:
                problem(("fields", column), column, f"the model {spec.model} documents no column {column!r}",
                        "add it to the model (and its .yml), or fix the mapping", "unknown_column")
    if spec.match.by == "natural_key":
        supported = getattr(writer, "NATURAL_KEYS", {}).get(spec.destination.object, ())
        if spec.match.field not in supported or not spec.match.column:
            problem(("match",), spec.match.field, f"{spec.destination.provider} {spec.destination.object} has no "
                    f"natural key {spec.match.field!r} (none it can upsert by or look up)",
                    f"natural keys here: {', '.join(supported) or 'none'}; set match.field and match.column",
                    "natural_key_not_supported")
    if spec.match.by == "external_id" and not getattr(writer, "EXTERNAL_ID_FIELD", None):
        problem(("match", "by"), "external_id", f"{spec.destination.provider} has no external-id upsert",
                "match by crm_id (the model's external_id column)", "external_id_not_supported")
    if spec.mode == "mirror" and spec.on_delete == "none":
        problem(("on_delete",), "none", "mirror needs on_delete (archive, delete or clear)",
                "set on_delete, or use mode upsert", "mirror_without_delete")
    if spec.mode != "mirror" and spec.on_delete != "none":
        problem(("on_delete",), spec.on_delete, f"on_delete only applies in mode mirror (mode is {spec.mode})",
                "use mode: mirror, or remove on_delete", "delete_without_mirror")
    if connections is not None:
        out += _connection_problems(sync, connections, problem)
    return out


def _connection_problems(sync: Sync, connections: ConnectionsFile, problem) -> list[Problem]:
    spec = sync.spec
    named = spec.destination.connection
    targets = [c for c in connections.connections if c.provider == spec.destination.provider
               and (named is None or c.id == named)]
    if named and not targets:
        problem(("destination", "connection"), named, f"no {spec.destination.provider} connection of that id",
                f"known: {', '.join(c.id for c in connections.connections)}", "unknown_connection")
    from canonry.validation import provider_spec

    provider = provider_spec(spec.destination.provider)
    scopes = provider.write_scopes if provider else {}
    for connection in targets:
        if not named and not (connection.write_back.enabled and spec.destination.object in
                              connection.write_back.objects):
            continue   # not a destination: the model's connection_id column names the connections written
        wb = connection.write_back
        if not wb.enabled or spec.destination.object not in wb.objects:
            problem(("destination",), connection.id, f"connection {connection.id} does not allow writing "
                    f"{spec.destination.object!r}", f"in the connections file: write_back: {{enabled: true, "
                    f"objects: [{spec.destination.object}]}}", "write_back_disabled")
        elif (connection.auth.scopes is not None and spec.destination.object in scopes
              and scopes[spec.destination.object] not in connection.auth.scopes):
            problem(("destination",), connection.id, f"connection {connection.id} lacks the write scope "
                    f"{scopes[spec.destination.object]!r}", "add it to auth.scopes and reconnect",
                    "write_scope_missing")
    return []


def reverse_etl_models() -> dict[str, dict]:
    """The push models as manifest-like nodes, read from dbt/models/reverse_etl (its .sql files and the
    columns its .yml documents) — no dbt parse, so `canonry validate` stays fast."""
    directory = PROJECT_ROOT / "dbt" / "models" / "reverse_etl"
    columns: dict[str, dict] = {}
    for path in directory.glob("*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []) or []:
            columns[model["name"]] = {c["name"]: {} for c in model.get("columns", []) or []}
    return {f"model.canonry.{p.stem}": {"original_file_path": f"models/reverse_etl/{p.name}",
                                        "columns": columns.get(p.stem, {})} for p in directory.glob("*.sql")}


def validate_syncs(connections: ConnectionsFile | None, directory: Path | None = None,
                   manifest: dict | None = None) -> list[Problem]:
    syncs, problems = load_syncs(directory)
    manifest = manifest or {"nodes": reverse_etl_models()}
    for sync in syncs.values():
        problems += validate_sync(sync, manifest, connections)
    return problems
