"""`canonry validate`: every broken file in tests/fixtures/connections/ reports its known fault, with its
line; everything at once; `--json` for machines; `canonry sync` refuses an invalid file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from canonry.cli import app
from canonry.config import SCHEMA_FILE, json_schema
from canonry.errors import ConfigError
from canonry.secrets import store_secret
from canonry.validation import load_connections

FIXTURES = Path(__file__).parent / "fixtures" / "connections"
EXPECTED: dict[str, list[dict]] = yaml.safe_load((FIXTURES / "expected.yml").read_text())
PASTED_SECRET = "pat-na1-11111111-2222-3333-4444-555555555555"
READ = ["oauth", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read",
        "crm.objects.owners.read"]


def _token_set(connection_id: str, scopes: list[str]) -> str:
    return json.dumps({"access_token": f"fixture-at-{connection_id}", "refresh_token": f"fixture-rt-{connection_id}",
                       "expires_at": None, "scopes": scopes, "connection_id": connection_id, "provider": "hubspot",
                       "status": "active"})


@pytest.fixture
def fixture_secrets(data_dir, monkeypatch):
    monkeypatch.setenv("CANONRY_FIXTURE_TOKEN", "fixture-private-app-token")
    monkeypatch.setenv("CANONRY_FIXTURE_CLIENT_SECRET", "fixture-client-secret")
    monkeypatch.delenv("CANONRY_FIXTURE_UNSET_TOKEN", raising=False)
    monkeypatch.delenv("CANONRY_CONFIG", raising=False)
    store_secret("local:fixture-hubspot-token", _token_set("hubspot-oauth", [*READ, "crm.objects.contacts.write"]))
    store_secret("local:fixture-readonly-token", _token_set("hubspot-oauth", READ))
    store_secret("local:fixture-other-token", _token_set("hubspot-other", READ))
    return data_dir


def test_every_fixture_is_listed():
    on_disk = {p.name for p in FIXTURES.glob("*.yml")} - {"expected.yml"}
    assert on_disk == set(EXPECTED), "every fixture file needs its expected problems in expected.yml"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_reports_the_known_fault_with_its_line(name, fixture_secrets):
    result = CliRunner().invoke(app, ["validate", "--json", "--config", str(FIXTURES / name)])
    report = json.loads(result.stdout)
    found = [{"code": p["code"], "line": p["line"]} for p in report["problems"]]
    assert found == EXPECTED[name], json.dumps(report["problems"], indent=1)
    assert result.exit_code == (1 if EXPECTED[name] else 0)
    assert report["valid"] is (not EXPECTED[name])
    for problem in report["problems"]:
        assert problem["file"] == str(FIXTURES / name)
        assert problem["hint"] and problem["message"]


def test_human_output_names_file_line_value_and_hint(fixture_secrets):
    path = FIXTURES / "many_faults.yml"
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])
    assert result.exit_code == 1
    output = result.output
    assert f"{path}:10: [invalid_cron] connections.0.schedule" in output
    assert "'every hour'" in output and "Hint: use five fields" in output
    assert f"{path}:9: [unknown_object]" in output and "'tickets'" in output
    assert f"{path}:16: [secret_unresolved]" in output and "CANONRY_FIXTURE_UNSET_TOKEN" in output
    assert "5 problem(s)" in output


def test_a_pasted_secret_is_never_echoed(fixture_secrets):
    path = FIXTURES / "secret_not_reference.yml"
    for args in (["validate", "--config", str(path)], ["validate", "--json", "--config", str(path)],
                 ["sync", "--config", str(path)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert PASTED_SECRET not in result.output
        assert "***" in result.output


def test_sync_refuses_an_invalid_file_before_anything_runs(fixture_secrets):
    result = CliRunner().invoke(app, ["sync", "--config", str(FIXTURES / "invalid_cron.yml")])
    assert result.exit_code == 1
    assert "refusing to sync" in result.output and "invalid_cron" in result.output
    assert not (fixture_secrets / "warehouse.duckdb").exists()
    assert not (fixture_secrets / "dlt").exists()


def test_config_path_from_environment(fixture_secrets, monkeypatch):
    monkeypatch.setenv("CANONRY_CONFIG", str(FIXTURES / "unknown_provider.yml"))
    result = CliRunner().invoke(app, ["validate", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"][0]["code"] == "unknown_provider"
    monkeypatch.setenv("CANONRY_CONFIG", str(FIXTURES / "valid.yml"))
    assert CliRunner().invoke(app, ["validate"]).exit_code == 0


def test_json_schema_is_exported_and_current():
    result = CliRunner().invoke(app, ["validate", "--schema"])
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == json_schema()
    assert json.loads(SCHEMA_FILE.read_text()) == printed, \
        "docs/connections.schema.json is stale: regenerate with `canonry validate --schema > docs/connections.schema.json`"
    auth = printed["$defs"]["AuthConfig"]["properties"]
    assert "never a value" in auth["secret"]["description"]
    assert printed["$defs"]["AuthConfig"]["properties"]["kind"]["enum"] == ["oauth2", "client_credentials", "api_key"]


def test_an_objects_list_breaking_a_tested_foreign_key_is_refused_where_dbt_builds(fixture_secrets):
    """`objects_incomplete`: `canonry validate` and `canonry sync` refuse it (dbt's relationships tests would
    fail); a command that builds nothing from the objects (`sync --no-transform`, `connect`) accepts it."""
    path = FIXTURES / "objects_incomplete.yml"
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])
    assert (f"{path}:9: [objects_incomplete] connections.0.objects.0: hubspot: objects lists deals, whose "
            "crm_opportunities.owner_user_id references crm_users, fed by owners (not listed): dbt's relationships "
            "tests would fail (value: 'deals'). Hint: add owners to objects, or drop objects: to sync every default "
            "object") in result.output
    refused = CliRunner().invoke(app, ["sync", "--config", str(path)])
    assert refused.exit_code == 1 and "refusing to sync" in refused.output and "objects_incomplete" in refused.output
    with pytest.raises(ConfigError) as caught:
        load_connections(path)
    assert {p.code for p in caught.value.problems} == {"objects_incomplete"}
    accepted = load_connections(path, builds_canonical=False)
    assert [c.id for c in accepted.connections] == ["hubspot-acme", "lever-acme", "ashby-acme"]
