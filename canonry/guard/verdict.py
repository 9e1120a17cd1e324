"""Violations, rules and verdicts shared by the SOQL and SQL guards.

A rule is data: a code, a severity, a message template and a check function. A check yields
:class:`Hit` objects (where, what, and optionally how to fix it); :func:`evaluate` turns hits into
:class:`Violation` objects, applies the fixes to a copy of the tree and decides the verdict:

* ``reject``  - at least one violation of severity ``error``;
* ``rewrite`` - no errors, and at least one fix was applied (``rewritten`` holds the new query);
* ``allow``   - otherwise (warnings and infos are reported but do not block).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlglot import exp

Severity = Literal["error", "warning", "info"]
VerdictKind = Literal["allow", "rewrite", "reject"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Violation:
    code: str
    severity: Severity
    message: str
    position: int | None = None  # 0-based character offset into the checked query, None = whole query

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "position": self.position}


@dataclass(frozen=True)
class Hit:
    """One finding of a rule check: template parameters, position, and an optional in-place fix."""

    params: dict[str, Any] = field(default_factory=dict)
    node: Any = None  # the offending tree node (for the position); None = whole query
    fix: Callable[[Any], None] | None = None  # called with the tree root; mutates it in place


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    message: str  # str.format template over Hit.params
    check: Callable[..., Iterable[Hit]] | None  # None: raised by the engine itself (parse errors)
    fix_note: str = ""  # appended to the message when the fix is applied

    def violation(self, hit: Hit, position: int | None, fixed: bool) -> Violation:
        text = self.message.format(**hit.params)
        if fixed and self.fix_note:
            text = f"{text} {self.fix_note.format(**hit.params)}"
        return Violation(self.code, self.severity, text, position)


@dataclass(frozen=True)
class Verdict:
    verdict: VerdictKind
    violations: tuple[Violation, ...]
    query: str
    rewritten: str | None = None
    kind: str = "soql"

    @property
    def passed(self) -> bool:
        """True when the query may run (as is, or in its rewritten form)."""
        return self.verdict != "reject"

    @property
    def codes(self) -> list[str]:
        return [v.code for v in self.violations]

    @property
    def final_query(self) -> str | None:
        """The query to run: the rewrite if there is one, the original if allowed, None if rejected."""
        if self.verdict == "reject":
            return None
        return self.rewritten or self.query

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "violations": [v.to_dict() for v in self.violations],
            "rewritten": self.rewritten,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_text(self) -> str:
        lines = [f"verdict: {self.verdict}"]
        for v in self.violations:
            where = "" if v.position is None else f" at {_line_col(self.query, v.position)}"
            lines.append(f"  {v.severity:<7} {v.code}{where}: {v.message}")
        if self.rewritten:
            lines.append(f"rewritten: {self.rewritten}")
        return "\n".join(lines)


def _line_col(sql: str, position: int) -> str:
    before = sql[:position]
    return f"line {before.count(chr(10)) + 1}, column {position - (before.rfind(chr(10)) + 1) + 1}"


_MISSING_RE = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")


def friendly_parse_message(description: str) -> str:
    """sqlglot's parser messages, reworded where they leak internals."""
    match = _MISSING_RE.search(description)
    if match:
        clause = match.group(2).upper()
        return f"Incomplete {clause}: something is missing after it"
    if description.startswith("Invalid expression / Unexpected token"):
        return "Unexpected word or symbol here"
    if "SENTINEL" in description:  # "Expected X but got <Token ... SENTINEL ...>": input ended early
        return re.sub(r"\s*but got <Token.*", "", description) + " but the query ended"
    return description


def unterminated_quote(sql: str, backslash_escapes: bool = True) -> int | None:
    """Offset of the opening quote of a '...' string that never closes, else None."""
    start, index = None, 0
    while index < len(sql):
        char = sql[index]
        if start is None and char == "'":
            start = index
        elif start is not None and char == "\\" and backslash_escapes:
            index += 1
        elif start is not None and char == "'":
            start = None
        index += 1
    return start


def offset_of(sql: str, line: int | None, col: int | None) -> int | None:
    """0-based offset of a 1-based (line, column) as sqlglot reports them (clamped to the text)."""
    if not line or not col:
        return None
    lines = sql.split("\n")
    if line > len(lines):
        return len(sql)
    return min(sum(len(text) + 1 for text in lines[: line - 1]) + col - 1, len(sql))


def decide(violations: Iterable[Violation], rewritten: str | None) -> VerdictKind:
    violations = list(violations)
    if any(v.severity == "error" for v in violations):
        return "reject"
    return "rewrite" if rewritten else "allow"


def evaluate(
    rules: Iterable[Rule],
    context: Any,
    tree: Any,
    position_of: Callable[[Any], int | None],
    render: Callable[[Any], str],
    query: str,
    kind: str,
) -> Verdict:
    """Run every rule's check on ``context``, then apply the fixes to ``tree`` and build the verdict.

    All checks see the tree as parsed; fixes run afterwards, and only when no rule reported an error
    (a rejected query is never rewritten). ``tree`` must be the caller's own parse (it is mutated).
    """
    found: list[tuple[Rule, Hit]] = []
    for rule in rules:
        if rule.check is None:
            continue
        found.extend((rule, hit) for hit in rule.check(context))

    has_error = any(rule.severity == "error" for rule, _ in found)
    positions = [position_of(hit.node) if hit.node is not None else None for _, hit in found]
    violations: list[Violation] = []
    applied = False
    for (rule, hit), position in zip(found, positions, strict=True):
        fixed = hit.fix is not None and not has_error
        if fixed:
            hit.fix(tree)
            applied = True
        violations.append(rule.violation(hit, position, fixed))

    rewritten = render(tree) if applied else None
    if rewritten is not None and rewritten == query:
        rewritten = None
    return Verdict(decide(violations, rewritten), tuple(violations), query, rewritten, kind)


def rules_table(rules: Iterable[Rule]) -> list[dict[str, str]]:
    """The rule catalogue as rows (for docs and ``--help``)."""
    return [{"code": r.code, "severity": r.severity, "message": r.message} for r in rules]


def node_position(node: exp.Expr | None) -> int | None:
    """0-based offset where a node's text starts: the leftmost token in its subtree, else (for nodes
    with no token of their own, like DISTINCT) the start of its nearest positioned ancestor."""
    current = node
    while current is not None:
        starts = [sub.meta_get("start") for sub in current.walk() if sub._meta]
        starts = [int(start) for start in starts if start is not None]
        if starts:
            return min(starts)
        current = current.parent
    return None
