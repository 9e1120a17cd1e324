"""No list of providers outside the providers' own folders: what the kit, the tests and the benchmarks need to
know about "every provider" they read from the registry (`canonry.providers.slugs()`, `spec(slug)`), so adding a
provider (docs/DEVELOPING.md) edits no shared list. Checked on the source text: a literal list, tuple, set or
dict (its keys) naming three or more provider slugs is a shared list.

`KNOWN` names the files that still hold one, each with why. It may only shrink: a file that no longer holds
a list must leave it (so the rule tightens as lists move into the registry)."""

from __future__ import annotations

import ast
from pathlib import Path

from canonry.providers import slugs

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("canonry", "sources", "dagster_project", "expectations", "tests", "benchmarks")

KNOWN = {
    # An ATS's hire times, computed per provider from its sandbox truth (the analyst guide's query is compared).
    "tests/ats_truth.py": "hire-time truth functions per ATS",
    # Per provider, one unknown path and what its error body looks like (the fidelity test's data).
    "tests/test_sandbox_fidelity.py": "error-body expectations per provider",
    "tests/sandbox/test_simulator_golden.py": "one authenticated request per provider",
    "tests/sandbox/scripts.py": "the golden scripts and tight limits per provider",
    # Reverse ETL's test world: the CRMs it pushes into, their sandboxes and sync names.
    "tests/reverse_etl/test_modes.py": "per-CRM mode expectations",
    "tests/reverse_etl/conftest.py": "the reverse-ETL world's CRMs",
    "tests/reverse_etl/test_write_by_key.py": "the shipped hires syncs and models, per CRM",
    "tests/webhooks/test_intake.py": "signed deliveries per provider",
    "tests/webhooks/test_providers.py": "providers whose sandbox sends webhooks",
    "tests/webhooks/helpers.py": "delivery builders per provider",
    "benchmarks/push_bench.py": "the CRMs the push benchmark measures",
}


def _own_folder(path: Path) -> bool:
    """A provider's own files: sources/<slug>/, canonry/sandbox/<slug>/."""
    parts = path.relative_to(ROOT).parts
    return (parts[0] == "sources" and len(parts) > 2) or (parts[:2] == ("canonry", "sandbox") and len(parts) > 3)


def shared_lists(source: str, providers: set[str]) -> list[tuple[int, list[str]]]:
    """(line, slugs) of every literal collection naming three or more of `providers`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            elements = node.elts
        elif isinstance(node, ast.Dict):
            elements = [key for key in node.keys if key is not None]
        else:
            continue
        named = {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)} & providers
        if len(named) >= 3:
            found.append((node.lineno, sorted(named)))
    return found


def test_the_rule_sees_a_list_of_providers_and_nothing_shorter():
    providers = {"alpha", "beta", "gamma"}
    assert shared_lists('X = ("alpha", "beta", "gamma")\nY = {"beta": 1, "gamma": 2}\n', providers) == [
        (1, ["alpha", "beta", "gamma"])]
    assert shared_lists('Z = {"alpha": 1, "beta": 2, "gamma": 3, "other": 4}\n', providers) == [
        (1, ["alpha", "beta", "gamma"])]


def test_no_shared_list_of_providers_outside_known_files():
    providers = set(slugs())
    holding: dict[str, list] = {}
    for root in SCANNED:
        for path in sorted((ROOT / root).rglob("*.py")):
            if _own_folder(path):
                continue
            found = shared_lists(path.read_text(), providers)
            if found:
                holding[path.relative_to(ROOT).as_posix()] = found
    new = {path: found for path, found in holding.items() if path not in KNOWN}
    assert not new, ("these files list providers; read them from canonry.providers (slugs(), spec(slug)) "
                     f"instead: {new}")
    gone = sorted(set(KNOWN) - set(holding))
    assert not gone, f"these files no longer list providers: remove them from KNOWN: {gone}"
