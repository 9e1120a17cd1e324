"""The data diff of two builds of the canonical tables (`canonical` vs `canonical__shadow`), joined by
canonical id (in the spirit of dbt audit_helper's compare_relations): per table the rows added, removed and
changed; per column the count of changed values and a sample of before -> after by canonical id; per enum
column the distribution shift, values new to the table and values outside the contract (unmapped).

Portable SQL (DuckDB and PostgreSQL): values compare as text (`cast(... as varchar)`: PostgreSQL's json has
no equality), `is distinct from` treats two nulls as equal, a full outer join pairs the rows."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from canonry.canonical import ENUMS, TABLES, id_column
from canonry.errors import ConfigError
from canonry.warehouse import connect

SAMPLE = 3


@dataclass
class ColumnDiff:
    column: str
    changed: int
    samples: list[dict] = field(default_factory=list)   # {id, before, after}


@dataclass
class EnumShift:
    column: str
    value: str | None
    before: int
    after: int
    new: bool          # not in the live table before
    unmapped: bool     # outside the contract's values (ENUMS)


@dataclass
class TableDiff:
    table: str
    rows_before: int
    rows_after: int
    added: int
    removed: int
    changed: int
    columns: list[ColumnDiff] = field(default_factory=list)
    enums: list[EnumShift] = field(default_factory=list)
    columns_only_before: list[str] = field(default_factory=list)
    columns_only_after: list[str] = field(default_factory=list)


@dataclass
class Diff:
    before: str
    after: str
    connections: list[str] | None
    tables: list[TableDiff] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self) | {"totals": self.totals()}

    def totals(self) -> dict[str, int]:
        return {
            "added": sum(t.added for t in self.tables), "removed": sum(t.removed for t in self.tables),
            "changed": sum(t.changed for t in self.tables),
            "values": sum(c.changed for t in self.tables for c in t.columns),
            "new_enum_values": sum(1 for t in self.tables for e in t.enums if e.new and e.after),
            "unmapped": sum(e.after for t in self.tables for e in t.enums if e.unmapped),
            "other": sum(max(0, e.after - e.before) for t in self.tables for e in t.enums if e.value == "OTHER"),
        }

    def empty(self) -> bool:
        return not any(t.added or t.removed or t.changed or t.columns_only_before or t.columns_only_after
                       for t in self.tables)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def connection_filter(connections: list[str] | None) -> str:
    """A WHERE clause keeping these connections' rows (all rows: none)."""
    return f"where connection_id in ({', '.join(map(_literal, connections))})" if connections else ""


def column_names(conn, schema: str, table: str) -> list[str]:
    rows = conn.execute("select column_name from information_schema.columns where table_schema = ? and "
                        "table_name = ? order by ordinal_position", [schema, table]).fetchall()
    return [r[0] for r in rows]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(alias: str, column: str) -> str:
    return f"cast({alias}.{quote(column)} as varchar)"


def table_diff(conn, before: str, after: str, table: str, connections: list[str] | None,
               sample: int = SAMPLE) -> TableDiff:
    key = id_column(table)
    old, new = column_names(conn, before, table), column_names(conn, after, table)
    shared = [c for c in old if c in new and c != key]
    where = connection_filter(connections)
    joined = (f"from (select * from {quote(before)}.{quote(table)} {where}) b "
              f"full outer join (select * from {quote(after)}.{quote(table)} {where}) a on b.{quote(key)} = a.{quote(key)}")
    both = f"b.{quote(key)} is not null and a.{quote(key)} is not null"
    differs = {c: f"{_text('b', c)} is distinct from {_text('a', c)}" for c in shared}
    any_differs = " or ".join(differs.values()) or "false"
    counts = ", ".join(f"sum(case when {both} and ({d}) then 1 else 0 end)" for d in differs.values())
    row = conn.execute(
        f"select sum(case when b.{quote(key)} is not null then 1 else 0 end), "
        f"sum(case when a.{quote(key)} is not null then 1 else 0 end), "
        f"sum(case when b.{quote(key)} is null then 1 else 0 end), sum(case when a.{quote(key)} is null then 1 else 0 end), "
        f"sum(case when {both} and ({any_differs}) then 1 else 0 end){', ' + counts if counts else ''} {joined}"
    ).fetchone()
    values = [int(v or 0) for v in row]
    result = TableDiff(table, *values[:5], columns_only_before=[c for c in old if c not in new],
                       columns_only_after=[c for c in new if c not in old])
    for column, changed in zip(shared, values[5:], strict=True):
        if not changed:
            continue
        samples = conn.execute(
            f"select b.{quote(key)}, {_text('b', column)}, {_text('a', column)} {joined} "
            f"where {both} and ({differs[column]}) order by b.{quote(key)} limit {int(sample)}").fetchall()
        result.columns.append(ColumnDiff(column, changed, [{"id": i, "before": x, "after": y} for i, x, y in samples]))
    for (enum_table, column), allowed in ENUMS.items():
        if enum_table == table and column in shared:
            result.enums += enum_shifts(conn, before, after, table, column, allowed, where)
    return result


def enum_shifts(conn, before: str, after: str, table: str, column: str, allowed: tuple[str, ...],
                where: str) -> list[EnumShift]:
    """Values whose count differs between the two builds."""
    rows = conn.execute(
        f"select v, sum(nb), sum(na) from ("
        f"select cast({quote(column)} as varchar) as v, count(*) as nb, 0 as na from {quote(before)}.{quote(table)} {where} "
        f"group by 1 union all "
        f"select cast({quote(column)} as varchar) as v, 0 as nb, count(*) as na from {quote(after)}.{quote(table)} {where} "
        f"group by 1) x group by v order by v").fetchall()
    return [EnumShift(column, v, int(nb), int(na), new=not nb, unmapped=v is not None and v not in allowed)
            for v, nb, na in rows if nb != na]


def existing_tables(conn, schema: str) -> set[str]:
    rows = conn.execute("select table_name from information_schema.tables where table_schema = ?",
                        [schema]).fetchall()
    return {r[0] for r in rows}


def diff(before: str = "canonical", after: str = "canonical__shadow", connections: list[str] | None = None,
         tables: list[str] | None = None, sample: int = SAMPLE) -> Diff:
    """Diff every canonical table present in both schemas (or `tables`), limited to `connections`."""
    conn = connect(read_only=True, purpose="diffing canonical tables")
    try:
        present = existing_tables(conn, before) & existing_tables(conn, after)
        wanted = [t for t in TABLES if t in present and (tables is None or t in tables)]
        return Diff(before, after, connections, [table_diff(conn, before, after, t, connections, sample)
                                                for t in wanted])
    finally:
        conn.close()


# --fail-on: `metric=N` or `metric=N%` (of the live rows, for added/removed/changed), or `table.column=N`.
THRESHOLD = re.compile(r"^(?P<metric>[a-z_]+(?:\.[a-z_]+)?)\s*=\s*(?P<limit>\d+(?:\.\d+)?)(?P<pct>%?)$")
METRICS = ("added", "removed", "changed", "values", "new_enum_values", "unmapped", "other")


def parse_threshold(text: str) -> tuple[str, float, bool]:
    match = THRESHOLD.match(text.strip())
    if not match or ("." not in match["metric"] and match["metric"] not in METRICS):
        raise ConfigError(f"--fail-on {text!r}: not a threshold",
                          hint=f"write METRIC=N or METRIC=N% (METRIC one of {', '.join(METRICS)}), or "
                               "TABLE.COLUMN=N (changed values of one column); the diff fails above N")
    return match["metric"], float(match["limit"]), bool(match["pct"])


def breaches(result: Diff, thresholds: list[str]) -> list[str]:
    """The thresholds the diff exceeds, each as a sentence."""
    totals = result.totals()
    live_rows = sum(t.rows_before for t in result.tables)
    found = []
    for text in thresholds:
        metric, limit, pct = parse_threshold(text)
        if "." in metric:
            table, column = metric.split(".", 1)
            value = sum(c.changed for t in result.tables if t.table == table for c in t.columns if c.column == column)
            value += sum(t.rows_before for t in result.tables if t.table == table and column in t.columns_only_before)
        else:
            value = totals[metric]
        measured = 100.0 * value / live_rows if pct and live_rows else value
        if measured > limit:
            unit = "%" if pct else ""
            found.append(f"{metric} = {measured:g}{unit} exceeds --fail-on {metric}={limit:g}{unit}")
    return found


def markdown(result: Diff, title: str = "Shadow diff") -> str:
    """The diff as a Markdown report."""
    scope = f" (connections {', '.join(result.connections)})" if result.connections else ""
    lines = [f"# {title}: `{result.before}` → `{result.after}`{scope}", ""]
    if result.empty():
        lines.append("No difference: every row and value is the same.")
    lines += ["| table | rows before | rows after | added | removed | changed |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {t.table} | {t.rows_before} | {t.rows_after} | {t.added} | {t.removed} | {t.changed} |"
              for t in result.tables]
    for t in result.tables:
        if not (t.columns or t.enums or t.columns_only_before or t.columns_only_after):
            continue
        lines += ["", f"## {t.table}", ""]
        for name, listed in (("only before", t.columns_only_before), ("only after", t.columns_only_after)):
            if listed:
                lines.append(f"- columns {name}: {', '.join(listed)}")
        for c in t.columns:
            lines.append(f"- `{c.column}`: {c.changed} value(s) changed")
            lines += [f"  - {s['id']}: {s['before']!r} → {s['after']!r}" for s in c.samples]
        for e in t.enums:
            flags = ", ".join(f for f, on in (("new", e.new), ("unmapped", e.unmapped)) if on)
            lines.append(f"- `{e.column}` = {e.value!r}: {e.before} → {e.after}" + (f" ({flags})" if flags else ""))
    return "\n".join(lines) + "\n"
