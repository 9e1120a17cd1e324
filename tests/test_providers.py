"""The provider registry: every folder under sources/ is found, specs are checked when their settings module
is imported (a misspelled field names the file), and what other parts of the project state about providers
agrees with the specs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from canonry import providers
from canonry.http_budget import budget_for
from canonry.providers import ProviderSpecError, UnknownProvider, scan, slugs, spec

ROOT = Path(__file__).resolve().parent.parent
UNION = re.compile(r"union_canonical\('(\w+)',\s*\[(.*?)\]", re.S)

GOOD_SPEC = """
from canonry.providers import ProviderObject, ProviderSpec, RateLimit

SPEC = ProviderSpec(
    slug="{slug}", family="ats", title="Test", auth_kinds=("api_key",), base_url="https://example.test",
    rate_limit=RateLimit(10, 10.0), objects=(ProviderObject("jobs"),), deletes="key_scan",
    canonical_tables=("ats_jobs",), {extra}
)
"""


def _package(tmp_path: Path, monkeypatch, name: str, slug: str, text: str) -> str:
    (tmp_path / name / slug).mkdir(parents=True)
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / slug / "__init__.py").write_text("")
    (tmp_path / name / slug / "settings.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_every_source_folder_is_a_provider():
    folders = sorted(p.parent.name for p in (ROOT / "sources").glob("*/settings.py"))
    assert list(slugs()) == folders
    assert set(slugs("ats")) | set(slugs("crm")) == set(folders)
    for slug in slugs():
        assert spec(slug).slug == slug and spec(slug).canonical_tables


def test_every_provider_has_a_simulator_found_by_scanning_the_sandbox_packages():
    from canonry.sandbox import DEFAULT_TOKENS, SIMULATORS, build_simulator
    from canonry.sandbox.engine import SandboxState

    assert sorted(SIMULATORS) == sorted(DEFAULT_TOKENS) == sorted(slugs())
    simulator = build_simulator("lever", SandboxState(slug="lever", seed=1, scale=1))
    assert type(simulator) is SIMULATORS["lever"] and type(simulator).__module__.startswith("canonry.sandbox.lever.")
    with pytest.raises(ValueError, match="unknown provider 'workday'; sandboxes exist for: ashby, greenhouse"):
        build_simulator("workday", SandboxState(slug="workday", seed=1, scale=1))


@pytest.mark.parametrize(("extra", "message"), [
    ("rate_limits=RateLimit(1, 1.0),", "unexpected keyword argument 'rate_limits'"),
    ("read_scopes={'candidates': 'x'},", "read_scopes names objects the provider does not read: candidates"),
    ("oauth=None, write_back=('jobs',),", "write_back objects need a write scope: jobs"),
])
def test_a_wrong_spec_is_an_error_naming_the_file(tmp_path, monkeypatch, extra, message):
    package = _package(tmp_path, monkeypatch, f"bad_sources_{abs(hash(extra))}", "acme", GOOD_SPEC.format(
        slug="acme", extra=extra))
    with pytest.raises(ProviderSpecError) as caught:
        scan(package)
    assert str(tmp_path / package / "acme" / "settings.py") in str(caught.value)
    assert message in str(caught.value)


def test_a_slug_other_than_the_folder_is_an_error(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, "misnamed_sources", "acme", GOOD_SPEC.format(slug="acme_ats",
                                                                                           extra=""))
    with pytest.raises(ProviderSpecError, match="SPEC.slug is 'acme_ats' but the folder is 'acme'"):
        scan(package)
    good = _package(tmp_path, monkeypatch, "good_sources", "acme", GOOD_SPEC.format(slug="acme", extra=""))
    assert scan(good)["acme"].rate_limit == providers.RateLimit(10, 10.0)


def test_an_unknown_provider_has_no_guessed_rate_budget():
    with pytest.raises(UnknownProvider, match="unknown provider 'workabel'"):
        budget_for("workabel", "conn-1")
    assert budget_for("hubspot", "registry-test").limit == spec("hubspot").rate_limit.requests


def test_marts_union_exactly_the_providers_whose_spec_feeds_them():
    """The canonical marts name their providers (dbt needs static refs); they must agree with the specs."""
    for path in sorted((ROOT / "dbt" / "models" / "marts").glob("*/*.sql")):
        match = UNION.search(path.read_text())
        assert match, f"{path.name}: no union_canonical(...)"
        table, listed = match.group(1), set(re.findall(r"'(\w+)'", match.group(2)))
        fed_by = {slug for slug in slugs() if table in spec(slug).canonical_tables}
        assert listed == fed_by, f"{path.name} unions {sorted(listed)}, the specs say {sorted(fed_by)}"


def test_a_provider_with_a_webhook_scheme_has_an_adapter_and_only_it():
    """`sources/<slug>/webhooks.py` (verify, interpret) exists exactly for the specs that name a scheme."""
    for slug in slugs():
        adapter = ROOT / "sources" / slug / "webhooks.py"
        assert adapter.exists() == (spec(slug).webhook is not None), slug
        if adapter.exists():
            module = providers.source_module(slug, "webhooks")
            assert callable(module.verify) and callable(module.interpret), slug
