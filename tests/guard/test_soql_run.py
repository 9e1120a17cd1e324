"""`canonry soql run|check --connection`: guarded SOQL against the Salesforce sandbox over real HTTP.

The connection is authorised with the real OAuth dance (scripted browser); the guard checks against the
org's own catalog (fetched from the sandbox's describe endpoints, cached under the data dir); the rows
come back through `GET /services/data/v62.0/query` + `nextRecordsUrl` and equal the sandbox's truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import duckdb
import pytest
from typer.testing import CliRunner

from canonry.cli import app
from canonry.guard.audit import sha256
from canonry.oauth import connect
from canonry.soql import catalog_path
from tests.helpers import clear_request_log, request_log, truth
from tests.oauth_helpers import PROVIDERS, OAuthSandbox, reserved_ports, scripted_browser

SCALE = 500
CONNECTION = "sf-acme"
API = "/services/data/v62.0"
runner = CliRunner()


@pytest.fixture
def sf(isolated_guard_env: Path, sandbox_factory, tmp_path, monkeypatch) -> OAuthSandbox:
    monkeypatch.setenv("CANONRY_KEY_FILE", str(tmp_path / "keys" / "master.key"))
    provider = PROVIDERS["salesforce"]
    monkeypatch.setenv(provider.secret_env, provider.client_secret)
    with reserved_ports(1) as (port,):
        redirect = f"http://127.0.0.1:{port}/callback"
        server = sandbox_factory("salesforce", scale=SCALE, redirect_uris=(redirect,))
    sandbox = OAuthSandbox(server, tmp_path / "connections.yml", redirect, redirect, provider=provider)
    connect(sandbox.add(CONNECTION, objects=["accounts", "users"]), browser=scripted_browser, timeout=15)
    clear_request_log(server)
    return sandbox


def _soql(sf: OAuthSandbox, command: str, query: str, *extra: str):
    return runner.invoke(app, ["soql", command, query, "--connection", CONNECTION, "--config", str(sf.path),
                               *extra])


def _api_log(server) -> list[dict]:
    """The sandbox's request log without its own control calls (`/_sandbox/...`)."""
    return [r for r in request_log(server) if not r["path"].startswith("/_sandbox/")]


def _queries(server) -> list[dict]:
    """The query calls in the sandbox's request log (the first batch and every nextRecordsUrl)."""
    return [r for r in _api_log(server) if r["path"].startswith(f"{API}/query")]


def _alive(server, name: str) -> list[dict]:
    return sorted((r for r in truth(server, name) if not r["deleted"]), key=lambda r: r["id"])


def _audit(isolated_guard_env: Path) -> list[tuple]:
    conn = duckdb.connect(str(isolated_guard_env / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute("SELECT command, question_sha256, verdict, codes FROM ops.query_audit "
                            "WHERE kind = 'soql' ORDER BY ts").fetchall()
    finally:
        conn.close()


def test_guarded_query_returns_the_sandbox_rows(sf, isolated_guard_env):
    query = "SELECT Id, Name, Industry, AnnualRevenue, Owner.Name FROM Account ORDER BY Id ASC LIMIT 450"
    result = _soql(sf, "run", query, "--json", "--batch-size", "200")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["verdict"]["verdict"] == "allow" and body["query"] == query
    assert body["columns"] == ["Id", "Name", "Industry", "AnnualRevenue", "Owner.Name"]

    users = {u["id"]: u["record"]["Name"] for u in truth(sf.server, "User")}
    expected = [[a["id"], a["record"]["Name"], a["record"]["Industry"], a["record"]["AnnualRevenue"],
                 users[a["record"]["OwnerId"]]] for a in _alive(sf.server, "Account")[:450]]
    assert body["rows"] == expected

    # The catalog was fetched from the org's describe endpoints, then the query ran in batches of 200:
    # the first call and two nextRecordsUrl follow-ups, stopping at the LIMIT.
    paths = [r["path"] for r in _api_log(sf.server)]
    assert f"{API}/sobjects" in paths and f"{API}/sobjects/Account/describe" in paths
    assert f"{API}/limits/recordCount" in paths
    queries = _queries(sf.server)
    assert len(queries) == 3 and body["calls"] == 3
    assert parse_qs(queries[0]["query"])["q"] == [query]
    assert all(q["path"].startswith(f"{API}/query/") for q in queries[1:])
    assert catalog_path(CONNECTION).exists()
    assert catalog_path(CONNECTION).is_relative_to(isolated_guard_env)

    # The table form: a header, a rule, one line per row; the count on stderr.
    table = _soql(sf, "run", f"SELECT Id, Name FROM Account WHERE Id = '{expected[0][0]}' LIMIT 5")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["Id", "Name"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith(expected[0][0]) and lines[2].endswith(expected[0][1]) and len(lines) == 3
    assert "(1 rows, 1 API calls" in table.stderr

    assert [(c, v) for c, _, v, _ in _audit(isolated_guard_env)] == [("run", "allow"), ("run", "allow")]
    assert _audit(isolated_guard_env)[0][1] == sha256(query)


def test_unsafe_query_is_refused_before_any_api_call(sf, isolated_guard_env):
    # A cold cache: the refusal costs the catalog's describe calls, and never a query.
    locking = "SELECT Id FROM Account WHERE Name = 'Acme' LIMIT 1 FOR UPDATE"
    refused = _soql(sf, "run", locking)
    assert refused.exit_code == 1
    assert "SOQL_FOR_UPDATE" in refused.stdout and "nothing was sent to Salesforce" in refused.stderr
    assert _queries(sf.server) == []
    assert any(r["path"].endswith("/describe") for r in _api_log(sf.server))

    # A warm cache: no API call at all. The org's own catalog knows Account has no Rating field here
    # (the shipped catalog has one, so without --connection the same query passes the check).
    clear_request_log(sf.server)
    unknown = "SELECT Id, Rating FROM Account WHERE Name = 'Acme' LIMIT 5"
    result = _soql(sf, "run", unknown, "--json")
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "reject" and [v["code"] for v in verdict["violations"]] == ["SOQL_UNKNOWN_FIELD"]
    assert "Rating" in verdict["violations"][0]["message"]
    again = _soql(sf, "run", locking, "--json")
    assert again.exit_code == 1 and json.loads(again.stdout)["verdict"] == "reject"
    assert _api_log(sf.server) == []  # neither a query nor a describe, nor a token call
    offline = runner.invoke(app, ["soql", "check", unknown])
    assert offline.exit_code == 0, offline.output  # the shipped catalog: Rating exists

    audit = _audit(isolated_guard_env)
    assert [(c, v) for c, _, v, _ in audit] == [("run", "reject"), ("run", "reject"), ("run", "reject"),
                                                ("check", "allow")]
    assert json.loads(audit[0][3]) == ["SOQL_FOR_UPDATE"] and json.loads(audit[1][3]) == ["SOQL_UNKNOWN_FIELD"]


def test_nonselective_query_runs_only_with_allow_nonselective(sf, isolated_guard_env):
    query = "SELECT Id, Name FROM Account WHERE Name LIKE '%an%' ORDER BY Id ASC LIMIT 500"
    refused = _soql(sf, "run", query)
    assert refused.exit_code == 1
    assert "not selective" in refused.stderr and "--allow-nonselective" in refused.stderr
    assert "nothing was sent to Salesforce" in refused.stderr
    assert "SOQL_LEADING_WILDCARD" in refused.stdout and "verdict: reject" in refused.stdout
    assert _queries(sf.server) == []

    allowed = _soql(sf, "run", query, "--allow-nonselective", "--json")
    assert allowed.exit_code == 0, allowed.output
    body = json.loads(allowed.stdout)
    assert body["verdict"]["verdict"] == "allow"
    assert [v["code"] for v in body["verdict"]["violations"]] == ["SOQL_LEADING_WILDCARD"]
    expected = [[a["id"], a["record"]["Name"]] for a in _alive(sf.server, "Account")
                if "an" in a["record"]["Name"].lower()]
    assert expected and body["rows"] == expected
    text = _soql(sf, "run", query, "--allow-nonselective")
    assert text.exit_code == 0 and "warning: SOQL_LEADING_WILDCARD" in text.stderr
    assert [v for _, _, v, _ in _audit(isolated_guard_env)] == ["reject", "allow", "allow"]


def test_rewritten_query_runs_with_the_default_limit(sf, isolated_guard_env):
    result = _soql(sf, "run", "SELECT Id, Name FROM Account", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["verdict"]["verdict"] == "rewrite" and body["query"] == "SELECT Id, Name FROM Account LIMIT 200"
    assert [v["code"] for v in body["verdict"]["violations"]] == ["SOQL_NO_LIMIT"]
    assert len(body["rows"]) == 200 < SCALE  # the org has more: the LIMIT did it
    alive = {a["id"]: a["record"]["Name"] for a in _alive(sf.server, "Account")}
    assert all(alive[row[0]] == row[1] for row in body["rows"])
    (call,) = _queries(sf.server)
    assert parse_qs(call["query"])["q"] == ["SELECT Id, Name FROM Account LIMIT 200"]

    text = _soql(sf, "run", "SELECT COUNT() FROM Account")
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[2].strip() == str(len(alive))


def test_check_with_connection_uses_the_cached_org_catalog(sf, isolated_guard_env):
    first = _soql(sf, "check", "SELECT Id, Name FROM Contact WHERE Email = 'a@b.c' LIMIT 5")
    assert first.exit_code == 0, first.output
    cached = json.loads(catalog_path(CONNECTION).read_text())
    assert cached["record_counts"]["Account"] == len(_alive(sf.server, "Account"))
    assert {d["name"] for d in cached["describes"]} == {"Account", "Contact", "Lead", "Opportunity",
                                                         "OpportunityStage", "User", "Task", "Event", "Note"}
    describes = len(_api_log(sf.server))
    second = _soql(sf, "check", "SELECT Id FROM Lead LIMIT 5")
    assert second.exit_code == 0 and len(_api_log(sf.server)) == describes  # served from the cache
    refreshed = _soql(sf, "check", "SELECT Id FROM Lead LIMIT 5", "--refresh-catalog")
    assert refreshed.exit_code == 0 and len(_api_log(sf.server)) > describes

    wrong = runner.invoke(app, ["soql", "run", "SELECT Id FROM Account LIMIT 1", "--connection", "nope",
                                "--config", str(sf.path)])
    assert wrong.exit_code == 2 and "no connection 'nope'" in wrong.stderr


def test_an_expired_session_is_refreshed_once_and_the_query_runs(sf, isolated_guard_env):
    """Salesforce sessions carry no expiry: a 401 INVALID_SESSION_ID refreshes the token once (stored
    before use), then the describe calls and the query go on with the new session."""
    before = sf.token_set(sf.get(CONNECTION))
    calls = sf.oauth.token_calls
    sf.oauth.expire_all_access_tokens()
    result = _soql(sf, "run", "SELECT Id, Name FROM User ORDER BY Id ASC LIMIT 3", "--json")
    assert result.exit_code == 0, result.output
    expected = [[u["id"], u["record"]["Name"]] for u in _alive(sf.server, "User")[:3]]
    assert json.loads(result.stdout)["rows"] == expected
    assert sf.oauth.token_calls == calls + 1
    after = sf.token_set(sf.get(CONNECTION))
    assert after["access_token"] != before["access_token"] and sf.oauth.token_state(after["access_token"]) == "valid"
    assert [r["status"] for r in _api_log(sf.server)][0] == 401
    assert before["access_token"] not in result.output and after["access_token"] not in result.output
