"""Natural-key matching where the CRM has no upsert by that key (Salesforce, Pipedrive), and the crash
lookup of creates left in doubt (Pipedrive: no upsert at all).

HubSpot upserts contacts by email itself (`batch/upsert` with `idProperty`): nothing is looked up there. A
writer that can look records up exposes `find(key, values) -> {lower-cased value: [ids]}` (Salesforce: SOQL
`WHERE Email IN (...)`; Pipedrive: `GET /api/v2/{object}/search`), and, when a create can be lost between
the provider's answer and our log, `recovery_key(fields) -> (key, value)`.

Before anything is written (and in a dry run, which reads only), each record to create or to update by key
is looked up:
* exactly one CRM record has the key -> the write is an update of that record by its id;
* none                               -> a create (mode `update`: skipped, the mode never creates);
* several                            -> the row's `data_error` (never a guess); the rest of the push goes on.
A create logged in flight by a crashed run (`ConnectionPlan.in_doubt`) is looked up the same way, by its
natural key or by the writer's recovery key (Pipedrive: email of a person, exact name of an organization),
so a re-run finds the record the lost answer had created instead of creating a second one.
"""

from __future__ import annotations

from canonry.reverse_etl.planner import ConnectionPlan, Desired
from canonry.reverse_etl.syncs import Sync


def lookups_of(sync: Sync, cplan: ConnectionPlan, writer) -> list[tuple[Desired, tuple[str, str]]]:
    """The records to look up before writing, each with (key, value)."""
    if not hasattr(writer, "find"):
        return []
    natural = sync.spec.match.by == "natural_key"
    out = []
    for desired in [*cplan.inserts, *cplan.updates]:
        if desired.external_id:
            continue
        if natural and desired.match:
            out.append((desired, (sync.spec.match.field or desired.match[0], desired.match[1])))
        elif desired.record_key in cplan.in_doubt and hasattr(writer, "recovery_key"):
            key = writer.recovery_key(desired.all_fields)
            if key is not None:
                out.append((desired, key))
    return out


def needs_lookup(sync: Sync, cplan: ConnectionPlan, module) -> bool:
    """Cheap check without a writer: could any record of this plan need a lookup?"""
    if sync.spec.match.by != "natural_key" and not cplan.in_doubt:
        return False
    if not getattr(module, "LOOKS_UP_KEYS", False):
        return False   # the CRM upserts by the key itself (HubSpot contacts by email)
    if sync.spec.match.by == "natural_key" and not getattr(module, "NATURAL_KEYS", {}).get(sync.object):
        return False
    return any(not d.external_id for d in [*cplan.inserts, *cplan.updates])


def resolve(sync: Sync, cplan: ConnectionPlan, writer) -> int:
    """Look the plan's keyed records up (see the module docstring); changes `cplan` in place. Returns how
    many records were found in the CRM."""
    wanted = lookups_of(sync, cplan, writer)
    if not wanted:
        return 0
    by_key: dict[str, list[str]] = {}
    for _, (key, value) in wanted:
        by_key.setdefault(key, []).append(value)
    found = {key: writer.find(key, values) for key, values in by_key.items()}
    matched, dropped, to_update = 0, set(), set()
    updating = {id(d) for d in cplan.updates}
    for desired, (key, value) in wanted:
        ids = found[key].get(value.lower(), [])
        if len(ids) > 1:
            dropped.add(id(desired))
            cplan.data_errors.append({
                "record_key": desired.record_key, "field": key, "value": value,
                "message": f"{len(ids)} {sync.provider} {sync.object} have the {key} {value!r} "
                           f"(ids {', '.join(ids[:5])}): merge them in the CRM, the push will not guess"})
        elif ids:
            matched += 1
            desired.external_id = ids[0]
            to_update.add(id(desired))
        elif id(desired) in updating:   # mode update matched by key: not in the CRM, and update never creates
            dropped.add(id(desired))
            cplan.skipped += 1
    cplan.updates = [d for d in cplan.updates if id(d) not in dropped] + [
        d for d in cplan.inserts if id(d) in to_update]
    cplan.inserts = [d for d in cplan.inserts if id(d) not in dropped and id(d) not in to_update]
    return matched
