"""`canonry scaffold provider` through the CLI, on a temporary repository: the files a new provider needs,
a ProviderSpec the registry accepts, and nothing overwritten or half-written on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from canonry.canonical import ATS_TABLES

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ("sources/__init__.py", "sources/workable/__init__.py", "sources/workable/settings.py",
            "sources/workable/helpers.py", "sources/workable/README.md",
            "dbt/models/staging/workable/_workable__sources.yml", "dbt/models/intermediate/workable/.gitkeep",
            "tests/sources/test_workable.py")


def _canonry(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "canonry.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def _written(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_scaffold_writes_a_provider_the_registry_accepts(tmp_path):
    done = _canonry("scaffold", "provider", "workable", "--family", "ats", "--title", "Workable", "--root",
                    str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert set(_written(tmp_path)) == set(EXPECTED)
    assert "docs/DEVELOPING.md" in done.stdout

    # The scaffolded package, imported as `sources` of that repository, passes the registry's checks.
    probe = ("import json; from canonry.providers import scan; s = scan('sources')['workable']; "
             "print(json.dumps([s.slug, s.family, list(s.canonical_tables), list(s.object_names)]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                           timeout=60)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == ["workable", "ats", list(ATS_TABLES), ["records"]]


def test_scaffold_refuses_what_it_cannot_do_and_writes_nothing(tmp_path):
    assert _canonry("scaffold", "provider", "workable", "--family", "ats", "--root", str(tmp_path)).returncode == 0
    (tmp_path / "sources" / "workable" / "settings.py").write_text("# edited by hand\n")
    before = _written(tmp_path)

    again = _canonry("scaffold", "provider", "workable", "--family", "crm", "--root", str(tmp_path))
    assert again.returncode == 2 and "already has files: sources/workable/__init__.py" in again.stderr
    wrong_family = _canonry("scaffold", "provider", "teamtailor", "--family", "hris", "--root", str(tmp_path))
    assert wrong_family.returncode == 2 and "family 'hris' is not one of ats, crm" in wrong_family.stderr
    bad_slug = _canonry("scaffold", "provider", "Team-Tailor", "--family", "ats", "--root", str(tmp_path))
    assert bad_slug.returncode == 2 and "provider slug 'Team-Tailor'" in bad_slug.stderr
    assert _written(tmp_path) == before
