"""The guarded AI loop against a local fake OpenAI-compatible endpoint (http.server on 127.0.0.1)."""

from __future__ import annotations

import json

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from canonry.guard.ai import ChatClient, LlmConfig, LlmError, LlmNotConfigured, ask, extract_query
from canonry.guard.audit import sha256
from canonry.guard.catalog import Catalog
from canonry.guard.cli import soql_app, sql_app
from canonry.guard.rules_soql import check_soql

from .fakes import chat_server

UNSAFE_SOQL = "SELECT Id, Name FROM Account WHERE Name = 'Acme' LIMIT 1 FOR UPDATE"
REPAIRED_SOQL = "SELECT Id, Name FROM Account WHERE Name = 'Acme' LIMIT 1"
SECRET = "sk-test-SECRET-never-print-me"

app = typer.Typer()
app.add_typer(soql_app, name="soql")
app.add_typer(sql_app, name="sql")


def _configure(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setenv("CANONRY_LLM_URL", f"{base_url}/v1")
    monkeypatch.setenv("CANONRY_LLM_MODEL", "fake-model")
    monkeypatch.setenv("CANONRY_LLM_API_KEY", SECRET)


def _guard(query: str):
    return check_soql(query, Catalog.default())


def test_loop_repairs_an_unsafe_answer() -> None:
    with chat_server([UNSAFE_SOQL, REPAIRED_SOQL]) as server:
        client = ChatClient(LlmConfig(url=f"{server.base_url}/v1", model="fake-model", api_key=SECRET))
        result = ask("Find the Acme account", "soql", _guard, client.complete, "Account(...)", max_repairs=3)

    assert result.ok and result.query == REPAIRED_SOQL
    assert [a.verdict.verdict for a in result.attempts] == ["reject", "allow"]
    assert len(server.requests) == 2
    first, second = (r["body"] for r in server.requests)
    assert first["model"] == "fake-model" and first["messages"][0]["role"] == "system"
    assert "Account(...)" in first["messages"][0]["content"]
    assert first["messages"][-1] == {"role": "user", "content": "Find the Acme account"}
    # the repair turn carries the unsafe answer and the violation codes back to the model
    assert second["messages"][-2] == {"role": "assistant", "content": UNSAFE_SOQL}
    assert "SOQL_FOR_UPDATE" in second["messages"][-1]["content"]
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"


def test_loop_gives_up_cleanly_after_n_repairs() -> None:
    with chat_server([UNSAFE_SOQL]) as server:
        client = ChatClient(LlmConfig(url=f"{server.base_url}/v1", model="m"))
        result = ask("Lock the Acme account", "soql", _guard, client.complete, "", max_repairs=2)

    assert not result.ok and result.query is None
    assert len(result.attempts) == 3 == len(server.requests)
    assert result.verdict is not None and result.verdict.codes == ["SOQL_FOR_UPDATE"]
    assert "authorization" not in server.requests[0]["headers"]  # no key configured, none sent


NONSELECTIVE_SOQL = "SELECT Id, LastName FROM Contact WHERE LastName LIKE '%son' LIMIT 20"
SELECTIVE_SOQL = "SELECT Id, LastName FROM Contact WHERE Name LIKE 'Son%' LIMIT 20"


def test_loop_repairs_a_nonselective_answer() -> None:
    """A selectivity warning is a rejection in the AI loop: it goes back to the model as an error."""
    assert check_soql(NONSELECTIVE_SOQL, Catalog.default()).verdict == "allow"  # a human's check warns only
    with chat_server([NONSELECTIVE_SOQL, SELECTIVE_SOQL]) as server:
        client = ChatClient(LlmConfig(url=f"{server.base_url}/v1", model="m"))
        result = ask("Contacts named like Son", "soql", _guard, client.complete, "", max_repairs=2)

    assert result.ok and result.query == SELECTIVE_SOQL
    assert [a.verdict.verdict for a in result.attempts] == ["reject", "allow"]
    assert sorted(result.attempts[0].verdict.codes) == ["SOQL_LEADING_WILDCARD", "SOQL_NON_SELECTIVE_FILTER"]
    repair = server.requests[1]["body"]["messages"][-1]["content"]
    assert "SOQL_LEADING_WILDCARD (error)" in repair and "SOQL_NON_SELECTIVE_FILTER (error)" in repair


@pytest.mark.parametrize("answer, codes", [
    (NONSELECTIVE_SOQL, ["SOQL_LEADING_WILDCARD", "SOQL_NON_SELECTIVE_FILTER"]),
    ("SELECT Id FROM Opportunity WHERE StageName != 'Closed Won' LIMIT 10",
     ["SOQL_NEGATIVE_FILTER_ONLY", "SOQL_NON_SELECTIVE_FILTER"]),
    ("SELECT Id FROM Lead WHERE Status NOT IN ('Closed', 'Converted') LIMIT 10",
     ["SOQL_NEGATIVE_FILTER_ONLY", "SOQL_NON_SELECTIVE_FILTER"]),
    ("SELECT Id FROM Account WHERE Industry = 'Media' OR BillingCity = 'Paris' LIMIT 10",
     ["SOQL_NON_SELECTIVE_FILTER"]),
])
def test_loop_refuses_when_repairs_stay_nonselective(answer: str, codes: list[str]) -> None:
    with chat_server([answer]) as server:
        client = ChatClient(LlmConfig(url=f"{server.base_url}/v1", model="m"))
        result = ask("anything", "soql", _guard, client.complete, "", max_repairs=2)

    assert not result.ok and result.query is None
    assert len(result.attempts) == 3 == len(server.requests)
    assert result.verdict is not None and sorted(result.verdict.codes) == codes
    assert all(v.severity == "error" for v in result.verdict.violations)


def test_cli_soql_ask_refuses_a_nonselective_answer(monkeypatch, isolated_guard_env) -> None:
    with chat_server([NONSELECTIVE_SOQL]) as server:
        _configure(monkeypatch, server.base_url)
        result = CliRunner().invoke(app, ["soql", "ask", "contacts ending in son", "--max-repairs", "1"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no query passed the guard after 2 attempt(s)" in result.stderr
    assert "error   SOQL_LEADING_WILDCARD" in result.stderr and "only selective queries" in result.stderr
    assert len(server.requests) == 2


def test_rewrite_verdict_returns_the_rewritten_query() -> None:
    with chat_server(["```sql\nSELECT Id FROM User WHERE IsActive = true;\n```"]) as server:
        client = ChatClient(LlmConfig(url=f"{server.base_url}/v1", model="m"))
        result = ask("active users", "soql", _guard, client.complete, "", max_repairs=0)
    assert result.ok and result.query == "SELECT Id FROM User WHERE IsActive = true LIMIT 200"


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("SELECT Id FROM Account", "SELECT Id FROM Account"),
        ("```soql\nSELECT Id FROM Account\n```", "SELECT Id FROM Account"),
        ("Here you go:\n```\nSELECT Id FROM Account;\n```\nEnjoy", "SELECT Id FROM Account"),
        ("SQL: SELECT 1;", "SELECT 1"),
    ],
)
def test_extract_query(answer: str, expected: str) -> None:
    assert extract_query(answer) == expected


def test_config_from_env_and_key_hidden() -> None:
    with pytest.raises(LlmNotConfigured, match="CANONRY_LLM_URL"):
        LlmConfig.from_env({})
    with pytest.raises(LlmNotConfigured, match="CANONRY_LLM_MODEL"):
        LlmConfig.from_env({"CANONRY_LLM_URL": "http://x"})
    config = LlmConfig.from_env({"CANONRY_LLM_URL": "http://x", "CANONRY_LLM_MODEL": "m",
                                 "CANONRY_LLM_API_KEY": SECRET})
    assert config.api_key == SECRET and SECRET not in repr(config)


def test_endpoint_error_does_not_leak_the_key() -> None:
    with chat_server([], status=500) as server:
        client = ChatClient(LlmConfig(url=f"{server.base_url}/v1", model="m", api_key=SECRET))
        with pytest.raises(LlmError) as caught:
            client.complete([{"role": "user", "content": "hi"}])
    assert "HTTP 500" in str(caught.value) and SECRET not in str(caught.value)


def test_cli_soql_ask_repairs_audits_and_never_prints_the_key(monkeypatch, isolated_guard_env) -> None:
    question = "Find the Acme account"
    with chat_server([UNSAFE_SOQL, REPAIRED_SOQL]) as server:
        _configure(monkeypatch, server.base_url)
        result = CliRunner().invoke(app, ["soql", "ask", question])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == REPAIRED_SOQL
    assert SECRET not in result.output

    conn = duckdb.connect(str(isolated_guard_env / "warehouse.duckdb"), read_only=True)
    rows = conn.execute(
        "SELECT kind, command, question_sha256, verdict, codes, attempt, latency_ms FROM ops.query_audit "
        "ORDER BY attempt"
    ).fetchall()
    conn.close()
    assert [(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows] == [
        ("soql", "ask", sha256(question), "reject", ["SOQL_FOR_UPDATE"], 0),
        ("soql", "ask", sha256(question), "allow", [], 1),
    ]
    assert all(r[6] >= 0 for r in rows)


def test_cli_sql_ask_gives_up_with_exit_1(monkeypatch) -> None:
    with chat_server(["SELECT * FROM read_csv('/etc/passwd')"]) as server:
        _configure(monkeypatch, server.base_url)
        result = CliRunner().invoke(app, ["sql", "ask", "dump the password file", "--max-repairs", "1"])
    assert result.exit_code == 1
    assert "no query passed the guard after 2 attempt(s)" in result.stderr
    assert "SQL_EXTERNAL_ACCESS" in result.stderr
    assert result.stdout == "" and SECRET not in result.output
    assert len(server.requests) == 2
    system = server.requests[0]["body"]["messages"][0]["content"]
    assert "canonical.crm_accounts(" in system and "DuckDB" in system


def test_cli_sql_ask_json(monkeypatch) -> None:
    answers = ["SELECT a.name FROM canonical.crm_accounts a, canonical.crm_users u",
               "SELECT a.name FROM canonical.crm_accounts a JOIN canonical.crm_users u "
               "ON u.user_id = a.owner_user_id"]
    with chat_server(answers) as server:
        _configure(monkeypatch, server.base_url)
        result = CliRunner().invoke(app, ["sql", "ask", "accounts with owners", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] and body["verdict"] == "rewrite"
    assert body["query"] == answers[1].replace("crm_accounts a", "crm_accounts AS a").replace(
        "crm_users u", "crm_users AS u") + " LIMIT 1000"
    assert [a["codes"] for a in body["attempts"]] == [["SQL_CROSS_JOIN", "SQL_NO_LIMIT"], ["SQL_NO_LIMIT"]]


@pytest.mark.parametrize("kind", ["soql", "sql"])
def test_cli_ask_without_endpoint_exits_2(kind: str) -> None:
    result = CliRunner().invoke(app, [kind, "ask", "how many accounts?"])
    assert result.exit_code == 2
    assert "No AI endpoint is configured" in result.stderr and "CANONRY_LLM_URL" in result.stderr


def test_cli_ask_endpoint_failure_exits_3(monkeypatch) -> None:
    with chat_server([], status=503) as server:
        _configure(monkeypatch, server.base_url)
        result = CliRunner().invoke(app, ["soql", "ask", "anything"])
    assert result.exit_code == 3
    assert "HTTP 503" in result.stderr and SECRET not in result.output
