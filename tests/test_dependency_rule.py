"""The one-way dependency rule of docs/ARCHITECTURE.md, checked on the source text (every import statement,
module-level or inside a function): the kit imports only the kit; a source imports the kit and its own
folder; the kit reaches providers only through the registry (`canonry.providers`, by name); the sandbox and
the query guard stand alone; and no group of modules imports each other in a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("canonry", "sources", "dagster_project", "expectations")

# The kit: what sources and every layer above build on.
KIT = ("canonry", "canonry.auth_halt", "canonry.canonical", "canonry.checkpoints", "canonry.config", "canonry.config_file", "canonry.durations",
       "canonry.errors", "canonry.http", "canonry.http_budget", "canonry.http_classify", "canonry.http_telemetry",
       "canonry.logs", "canonry.netsafety", "canonry.oauth", "canonry.oauth_endpoints", "canonry.oauth_tokens",
       "canonry.ops", "canonry.postgres", "canonry.providers", "canonry.raw", "canonry.runtime", "canonry.secrets",
       "canonry.tracing", "canonry.validation", "canonry.warehouse", "canonry.warehouse_lock",
       "canonry.warehouse_snapshot", "canonry.writeback",
       # the audit trail (ops.audit_log) is written by every layer, the query guard included
       "canonry.governance", "canonry.governance.audit",
       # the webhook contract each source's adapter (sources/<slug>/webhooks.py) implements
       "canonry.webhooks.contract")
STAND_ALONE = ("canonry.sandbox", "canonry.guard")
STAND_ALONE_ENTRY_POINTS = ("canonry.guard.cli",)   # `canonry guard ...` wires the guard to the SOQL runner
# Provider-specific features of the layer above the kit that call a source's helpers directly (the SOQL
# runner). Nothing else names a source in an import.
NAMES_SOURCES = ("canonry.soql",)
# Cycles through function-local imports that predate the rule; a fix may shrink them, never add to them.
KNOWN_CYCLES = (
    # errors redact registered secrets; secrets find the data dir through warehouse, which reports errors
    {"canonry.errors", "canonry.postgres", "canonry.secrets", "canonry.warehouse", "canonry.warehouse_lock"},
    {"canonry.guard.rules_sql", "canonry.guard.rules_sql_cost"},
    {"canonry.sandbox.hubspot", "canonry.sandbox.hubspot_writes"},
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _ours(name: str) -> str | None:
    """The module of ours an imported name lives in (`canonry.http.ProviderSession` -> `canonry.http`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> dict[str, int]:
    """Our modules `module` imports, with the line of the first import of each."""
    out: dict[str, int] = {}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            target = _ours(name)
            if target and target != module:
                out.setdefault(target, node.lineno)
    return out


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(rule) -> list[str]:
    return [f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}" for m, targets in sorted(GRAPH.items())
            for t, line in targets.items() if not rule(m, t)]


def test_the_kit_imports_only_the_kit():
    assert not _violations(lambda m, t: m not in KIT or t in KIT)


def test_a_source_imports_the_kit_and_its_own_folder_only():
    def rule(module: str, target: str) -> bool:
        if not module.startswith("sources."):
            return True
        own = ".".join(module.split(".")[:2])
        return target in KIT or _within(target, (own,))
    assert not _violations(rule)


def test_only_the_registry_finds_providers():
    """Outside sources/, no module names a provider's package in an import (the registry imports them by
    name); the provider-specific features listed in NAMES_SOURCES are the exception."""
    assert not _violations(lambda m, t: not t.startswith("sources") or m.startswith("sources")
                           or _within(m, NAMES_SOURCES))


def test_sandbox_and_guard_stand_alone():
    def rule(module: str, target: str) -> bool:
        if not _within(module, STAND_ALONE) or module in STAND_ALONE_ENTRY_POINTS:
            return True
        return _within(target, (".".join(module.split(".")[:2]),)) or target in KIT
    assert not _violations(rule)


def test_no_import_cycles():
    """Tarjan's strongly connected components over every import; the known function-local ones may only
    shrink."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while not component or v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    unknown = [sorted(c) for c in cycles if not any(c <= known for known in KNOWN_CYCLES)]
    assert not unknown, f"import cycles: {unknown}"


def test_the_rule_sees_imports():
    """The checks above would pass on an empty graph: they do not (the kit is imported by the sources)."""
    importers = defaultdict(set)
    for module, targets in GRAPH.items():
        for target in targets:
            importers[target].add(module)
    assert "sources.hubspot.helpers" in importers["canonry.http"] and "canonry.validation" in importers["canonry.config"]
