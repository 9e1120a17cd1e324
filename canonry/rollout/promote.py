"""`canonry promote` and `canonry rollback`.

Promote swaps the shadow build into place, table by table, in one transaction: the live rows (all, or only
those of the canary connections) are kept in `canonical__previous`, then replaced by the shadow's. A table
whose columns differ from the shadow's cannot be swapped row for row: it is rebuilt live with
`dbt build --full-refresh` instead (never for a canary: that would touch every connection). Each promoted
table's code version goes to `ops.rollout_versions`.

Rollback puts back the version recorded before the last promote: rebuilt from raw with that version's copy
of the dbt project when one was kept (canonry shadow keeps one per version), else restored from the rows
kept in `canonical__previous` at the promote; what neither can restore is named."""

from __future__ import annotations

from dataclasses import dataclass, field

from canonry.rollout.diff import column_names, connection_filter, existing_tables, quote
from canonry.rollout.pins import Version, code_hash, connections_feeding, pins, set_pins, unpin
from canonry.rollout.shadow import (
    SUFFIX,
    build_shadow,
    current_version,
    project_snapshot,
    record_version,
    snapshot_project,
    versions,
)
from canonry.transform import DBT_DIR, build, parse
from canonry.warehouse import connect
from canonry.warehouse import dbt_manifest_path as manifest_path

LIVE = "canonical"
SHADOW = LIVE + SUFFIX
PREVIOUS = LIVE + "__previous"


@dataclass
class Outcome:
    swapped: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    not_restored: list[str] = field(default_factory=list)   # sentences: what could not be done, and why
    version: Version | None = None
    how: str = ""
    pinned: dict[str, str] = field(default_factory=dict)    # connection id -> the dbt code hash it is pinned to
    unpinned: list[str] = field(default_factory=list)        # connections that follow the checkout again

    @property
    def success(self) -> bool:
        return not self.not_restored


def swap(source: str, tables: list[str], connections: list[str] | None,
         keep: frozenset[str] = frozenset()) -> tuple[list, list]:
    """Replace the live rows of `tables` (of `connections`, or all) by `source`'s, in one transaction;
    the live tables in `keep` are first copied whole into canonical__previous. Returns (swapped, not
    swappable: columns differ)."""
    conn = connect(purpose="swapping canonical tables")
    where = connection_filter(connections)
    swapped, mismatched = [], []
    try:
        live = existing_tables(conn, LIVE)
        for table in tables:
            if table not in live or column_names(conn, LIVE, table) != column_names(conn, source, table):
                mismatched.append(table)
        conn.execute("begin")
        if keep:
            conn.execute(f"create schema if not exists {PREVIOUS}")
        for table in [t for t in tables if t not in mismatched]:
            if table in keep:
                conn.execute(f"drop table if exists {PREVIOUS}.{quote(table)}")
                conn.execute(f"create table {PREVIOUS}.{quote(table)} as select * from {LIVE}.{quote(table)}")
            conn.execute(f"delete from {LIVE}.{quote(table)} {where}")
            conn.execute(f"insert into {LIVE}.{quote(table)} select * from {quote(source)}.{quote(table)} {where}")
            swapped.append(table)
        conn.execute("commit")
    except BaseException:
        try:
            conn.execute("rollback")
        finally:
            conn.close()
        raise
    conn.close()
    return swapped, mismatched


def shadow_version() -> tuple[Version, list[str], list[str] | None]:
    """The code version, tables and connections of the last shadow build."""
    rows = [r for r in versions() if r["action"] == "shadow"]
    if not rows:
        return Version(None, None, None), [], None
    last = rows[-1]["version_id"]
    mine = [r for r in rows if r["version_id"] == last]
    first = mine[0]
    return Version(first["git_commit"], first["git_dirty"], first["manifest_hash"]), \
        [r["table_name"] for r in mine], first["connections"]


def live_version() -> Version:
    """What built the live tables when no promote recorded it: the live dbt target's manifest."""
    return Version(None, None, code_hash(manifest_path()))


def checkout_version() -> Version:
    """The checkout's dbt code as it is now (a `dbt parse` into the live target)."""
    parse()
    return current_version(manifest_path(), DBT_DIR)


def _pin(outcome: Outcome, connections: list[str], version: Version, action: str, checkout: Version) -> None:
    """Make what `action` put live durable: pin these connections to `version`, or lift their pins when
    `version` is the checkout's code (ordinary builds then keep it as it is)."""
    if not connections:
        return
    if version.manifest_hash and version.manifest_hash == checkout.manifest_hash:
        outcome.unpinned += [p.connection_id for p in unpin(connections)]
        return
    set_pins(connections, version, action)
    outcome.pinned.update({c: version.manifest_hash or "" for c in connections})


def promote(connections: list[str] | None = None) -> Outcome:
    """Swap the last shadow build into `canonical` (all connections, or a canary subset)."""
    version, tables, _ = shadow_version()
    outcome = Outcome(version=version)
    conn = connect(read_only=True, purpose="reading the shadow")
    try:
        present = existing_tables(conn, SHADOW)
    finally:
        conn.close()
    tables = [t for t in tables if t in present]
    if not tables:
        outcome.not_restored.append(f"no shadow build to promote ({SHADOW} is empty): run `canonry shadow` first")
        return outcome
    baseline = live_version()  # read before the parse below rewrites the live manifest
    checkout = checkout_version()
    _record_baseline(tables, baseline, checkout)
    # The rows as they were before this version first went live (a canary, then the rest, is one rollout).
    live = history()
    keep = frozenset(t for t in tables if live[t][-1]["manifest_hash"] != version.manifest_hash
                     or live[t][-1]["action"] in ("baseline", "rollback"))
    outcome.swapped, mismatched = swap(SHADOW, tables, connections, keep)
    if mismatched and connections:
        outcome.not_restored += [f"{t}: its columns differ from the shadow's; a canary cannot rebuild it for some "
                                 "connections only (promote it for every connection)" for t in mismatched]
    elif mismatched:
        built = build(select=mismatched, full_refresh=True, honour_pins=False)
        if built.success:
            outcome.rebuilt = mismatched
        else:
            outcome.not_restored += [f"{t}: columns differ and `dbt build --full-refresh` failed "
                                     f"({built.error or [n.name for n in built.failures()]})" for t in mismatched]
    done = outcome.swapped + outcome.rebuilt
    outcome.how = "canary" if connections else "promote"
    if done:
        before = live[done[0]][-1]   # what was live before this promote (history read above)
        record_version(outcome.how, done, version, connections)
        affected = connections_feeding(done)
        if connections:
            action = "promote " + " ".join(f"-c {c}" for c in connections)
            _pin(outcome, [c for c in affected if c in connections], version, action, checkout)
            # The other connections keep what they had: pinned, unless a pin already says what that is.
            held = pins()
            rest = [c for c in affected if c not in connections and c not in held]
            _pin(outcome, rest, Version(before["git_commit"], before["git_dirty"], before["manifest_hash"]),
                 action, checkout)
        else:
            _pin(outcome, affected, version, "promote", checkout)
    return outcome


def _record_baseline(tables: list[str], baseline: Version, checkout: Version) -> None:
    """Tables never promoted yet: record what built them (the live manifest), so a rollback can name it;
    when that is the checkout's code, keep a copy of it so that a rollback can rebuild it from raw."""
    known = {r["table_name"] for r in versions() if r["action"] != "shadow"}
    fresh = [t for t in tables if t not in known]
    if fresh:
        if baseline.manifest_hash and baseline.manifest_hash == checkout.manifest_hash:
            baseline = checkout
            snapshot_project(checkout, DBT_DIR)
        record_version("baseline", fresh, baseline)


def history() -> dict[str, list[dict]]:
    """table -> its live versions (baseline, promote, canary, rollback), oldest first."""
    out: dict[str, list[dict]] = {}
    for row in versions():
        if row["action"] != "shadow":
            out.setdefault(row["table_name"], []).append(row)
    return out


def rollback() -> Outcome:
    """Put back, per table, the version live before the last promote (see the module docstring)."""
    outcome = Outcome(how="rollback")
    targets: dict[str, dict] = {}
    for table, rows in history().items():
        if rows[-1]["action"] not in ("promote", "canary"):
            continue
        # A canary then the rest of the same version is one rollout: go back to what was live before it.
        at = len(rows) - 1
        while at >= 0 and rows[at]["manifest_hash"] == rows[-1]["manifest_hash"] \
                and rows[at]["action"] in ("promote", "canary"):
            at -= 1
        if at >= 0:
            targets[table] = {"previous": rows[at], "last": rows[-1]}
    if not targets:
        outcome.not_restored.append("nothing to roll back: no promote recorded in ops.rollout_versions")
        return outcome
    by_hash: dict[str | None, list[str]] = {}
    for table, pair in targets.items():
        by_hash.setdefault(pair["previous"]["manifest_hash"], []).append(table)
    conn = connect(read_only=True, purpose="reading the previous tables")
    try:
        kept = existing_tables(conn, PREVIOUS)
    finally:
        conn.close()
    checkout: Version | None = None
    for manifest_hash, tables in by_hash.items():
        previous = targets[tables[0]]["previous"]
        version = Version(previous["git_commit"], previous["git_dirty"], manifest_hash)
        outcome.version = version
        connections = None  # every connection's rows go back to the previous version (a canary's too)
        snapshot = project_snapshot(manifest_hash)
        if snapshot is not None:  # rebuilt from raw with that version's code
            rebuilt = build_shadow(select=tables, project_dir=snapshot, kind="rollback", record=False)
            done, _ = swap(SHADOW, [t for t in tables if t in rebuilt.tables], connections)
            outcome.rebuilt += done
            missing = [t for t in tables if t not in done]
            outcome.not_restored += [f"{t}: the rebuild with {version.describe()} failed or changed its columns"
                                     for t in missing]
        else:
            done, _ = swap(PREVIOUS, [t for t in tables if t in kept], connections)
            outcome.swapped += done
            outcome.not_restored += [
                f"{t}: {version.describe()} was not kept (no copy of its dbt project) and no rows were kept "
                f"in {PREVIOUS}.{t}" for t in tables if t not in done]
        if done:
            record_version("rollback", done, version, connections)
            if checkout is None:
                checkout = checkout_version()
            _pin(outcome, connections_feeding(done), version, "rollback", checkout)
    return outcome
