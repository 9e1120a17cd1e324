"""The diff and push engine (see the package docstring for the protocol)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from canonry.errors import CanonryError, ErrorClass
from canonry.warehouse import connect

MODEL_NAME = re.compile(r"^rev_(?P<provider>[a-z0-9]+)__(?P<object>[a-z0-9_]+)$")
KEY_COLUMNS = ("record_key", "connection_id", "external_id")
DELETE_MODES = ("none", "clear")
IN_DOUBT = ("in_flight", "failed")


class PushRefused(CanonryError):
    """The push did not start: the gate failed, write-back is not allowed, or the model is not a push model."""

    def __init__(self, message: str, *, hint: str, connection_id: str | None = None,
                 error_class: ErrorClass = ErrorClass.CONFIG_ERROR) -> None:
        super().__init__(error_class, message, connection_id=connection_id, hint=hint)


# -- the model ----------------------------------------------------------------------------------------
@dataclass
class ModelInfo:
    name: str
    provider: str
    object: str
    deletes: str = "none"
    canonical_parents: list[str] = field(default_factory=list)   # canonical tables it reads (transitively)


def _manifest() -> dict:
    from canonry.transform import parse
    from canonry.warehouse import dbt_manifest_path as manifest_path

    path = manifest_path()
    if not path.exists():
        result = parse()
        if not result.success:
            raise PushRefused(f"dbt parse failed: {result.error}", hint="fix the dbt project, then retry")
    return json.loads(path.read_text())


def model_info(model: str, manifest: dict | None = None) -> ModelInfo:
    match = MODEL_NAME.match(model)
    if not match:
        raise PushRefused(f"{model!r} is not a reverse-ETL model", hint="push models are named "
                          "rev_<provider>__<object> and live in dbt/models/reverse_etl/")
    manifest = manifest or _manifest()
    nodes = manifest.get("nodes", {})
    node = nodes.get(f"model.canonry.{model}")
    if node is None or "models/reverse_etl/" not in node.get("original_file_path", ""):
        raise PushRefused(f"no reverse-ETL model {model!r} in the dbt project",
                          hint="add dbt/models/reverse_etl/<model>.sql (and `canonry` reparses it)")
    meta = (node.get("config", {}).get("meta") or node.get("meta") or {}).get("reverse_etl", {})
    deletes = meta.get("deletes", "none")
    if deletes not in DELETE_MODES:
        raise PushRefused(f"{model}: meta.reverse_etl.deletes is {deletes!r}",
                          hint=f"use one of {', '.join(DELETE_MODES)}")
    parents: list[str] = []
    seen: set[str] = set()
    stack = list(node.get("depends_on", {}).get("nodes", []))
    while stack:
        unique_id = stack.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        parent = nodes.get(unique_id, {})
        if "models/marts/" in parent.get("original_file_path", ""):
            parents.append(parent["name"])
            continue   # the canonical contract is the boundary: what is behind it is its own gate's business
        stack += parent.get("depends_on", {}).get("nodes", [])
    return ModelInfo(model, match["provider"], match["object"], deletes, sorted(parents))


def build_selection(model: str) -> list[str]:
    """The model and its upstream, plus what the canonical parents' tests reference (a relationships test
    of crm_contacts needs crm_accounts built too), so every dbt test of those tables runs in this build."""
    from canonry.transform import parse

    try:
        manifest = _manifest()
        info = model_info(model, manifest)
    except PushRefused:
        parse()   # a model added since the last parse
        manifest = _manifest()
        info = model_info(model, manifest)
    parents = {f"model.canonry.{t}" for t in info.canonical_parents}
    extra: set[str] = set()
    for node in manifest.get("nodes", {}).values():
        depends = set(node.get("depends_on", {}).get("nodes", []))
        if node.get("resource_type") == "test" and depends & parents:
            extra |= {d.split(".")[-1] for d in depends - parents if d.startswith("model.")}
    return [f"+{model}", *(f"+{name}" for name in sorted(extra))]


# -- the gate -----------------------------------------------------------------------------------------
@dataclass
class GateVerdict:
    """The outcome of one build for one model: dbt (models + tests) and the GE suites of its canonical tables."""

    model: str
    passed: bool
    failed_checks: list[str] = field(default_factory=list)
    canonical_tables: list[str] = field(default_factory=list)
    build_id: str = ""
    source: str = "canonry"

    def describe(self) -> str:
        if self.passed:
            return (f"gate passed (build {self.build_id}: dbt tests and GE suites of "
                    f"{', '.join(self.canonical_tables) or 'no canonical table'})")
        return "gate failed: " + "; ".join(self.failed_checks)


def gate(model: str, *, providers: list[str] | None = None) -> GateVerdict:
    """Build the model and its upstream (`dbt build --select +model`, tests included), then run the GE suites
    of the canonical tables it reads (those some configured provider feeds). Writes nothing to providers."""
    return gates([model], providers=providers)[model]


def gates(models: list[str], *, providers: list[str] | None = None) -> dict[str, GateVerdict]:
    """`gate` for several models in one dbt build (each verdict names only its own model's failures)."""
    from canonry.transform import run_dbt
    from expectations.gate import run_gate, tables_fed_by

    selection: list[str] = []
    for model in models:
        selection += [s for s in build_selection(model) if s not in selection]
    # cautious: a test runs when all its parents are in the selection (the canonical parents' tests all are).
    result = run_dbt(["build", "--select", *selection, "--indirect-selection", "cautious"])
    manifest = _manifest()
    tests_of: dict[str, set[str]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") == "test":
            tests_of[node["name"]] = {d.split(".")[-1] for d in node.get("depends_on", {}).get("nodes", [])}
    built = {n.name: n for n in result.nodes}
    verdicts = {}
    ge_cache: dict[str, list] = {}
    for model in models:
        info = model_info(model, manifest)
        relevant = set(info.canonical_parents) | {model}
        failed = [f"dbt {n.resource_type} {n.name}: {n.status}" + (f" ({n.message})" if n.message else "")
                  for n in result.failures()
                  if n.name in relevant or tests_of.get(n.name, set()) & relevant]
        node = built.get(model)
        if (node is None or node.status not in ("success", "pass")) and not failed:
            failed.append(f"dbt model {model} was not built ({node.status if node else 'not run'})"
                          + (f": {result.error}" if result.error else ""))
        fed = tables_fed_by(providers or [info.provider])
        tables = [t for t in info.canonical_parents if t in fed]
        run_id = ""
        if not failed:
            missing = [t for t in tables if t not in ge_cache]
            if missing:
                outcome = run_gate(missing)
                for table in missing:
                    ge_cache[table] = [c for c in outcome.checks if c.table == table]
                run_id = outcome.run_id
            failed += [f"GE canonical.{c.table}: {c.expectation}({c.column or ''}) failed, observed {c.observed}"
                       for t in tables for c in ge_cache[t] if not c.success]
        verdicts[model] = GateVerdict(model, not failed, failed, tables, run_id or uuid.uuid4().hex[:12])
    return verdicts


# -- syncs --------------------------------------------------------------------------------------------
def sync_for(name: str, manifest: dict | None = None):
    """The sync `name` (a reverse_etl/<name>.yml, or the one sync of model `name`), else the implied sync
    of model `name` (mode upsert, every non-key column a CRM field of the same name)."""
    from canonry.reverse_etl.syncs import implied_sync, resolve

    found = resolve(name)
    if found is not None:
        return found
    info = model_info(name, manifest)
    nodes = (manifest or _manifest()).get("nodes", {})
    columns = list(nodes.get(f"model.canonry.{name}", {}).get("columns", {}))
    sync = implied_sync(name, columns, info.provider, info.object, info.deletes)
    sync.spec.fields = {}   # read from the built table (plan): an implied sync maps every non-key column
    return sync


def plan(name: str, info: ModelInfo | None = None, *, only_ids: set[str] | None = None,
         connection: str | None = None):
    """Diff the sync's model against ops.push_state field by field; reads only (a dry run is this)."""
    from canonry.reverse_etl.planner import PlanError, plan_sync

    sync = sync_for(name)
    if not sync.spec.fields:
        sync.spec.fields = _table_columns(sync.model)
    if connection:
        if sync.spec.destination.connection not in (None, connection):
            raise PushRefused(f"sync {sync.name} writes only to {sync.spec.destination.connection}, not "
                              f"{connection}", hint="push it to its own destination connection")
        sync.spec.destination.connection = connection
    try:
        return plan_sync(sync, only_ids=only_ids)
    except PlanError as exc:
        raise PushRefused(exc.detail, hint=exc.hint) from None


def _table_columns(model: str) -> dict[str, str]:
    from canonry.reverse_etl.syncs import KEY_COLUMNS

    conn = connect()
    try:
        try:
            cursor = conn.execute(f'select * from reverse_etl."{model}" limit 0')
        except Exception:  # noqa: BLE001 - not built: plan_sync reports it
            return {"record_key": "record_key"}
        return {d[0]: d[0] for d in cursor.description if d[0] not in KEY_COLUMNS}
    finally:
        conn.close()
