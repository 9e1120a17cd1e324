"""A warehouse URL that cannot take effect is one clear config_error through the CLI, naming the URL with its
password redacted, exiting non-zero, and creating nothing (no DuckDB file as a silent fallback)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from canonry.cli import app
from tests.pg import require_postgres

runner = CliRunner()
PASSWORD = "hunter2hunter2"


def _refused(data_dir, monkeypatch, url: str, command: list[str]) -> str:
    monkeypatch.setenv("CANONRY_WAREHOUSE", url)
    result = runner.invoke(app, command)
    assert result.exit_code != 0, result.output
    assert result.output.count("[config_error]") == 1, result.output
    assert PASSWORD not in result.output
    assert not (data_dir / "warehouse.duckdb").exists()
    return result.output


@pytest.mark.parametrize("command", [["status"], ["sync"], ["sql", "run", "select 1"]])
def test_an_unknown_url_scheme_is_a_config_error(data_dir, monkeypatch, command):
    output = _refused(data_dir, monkeypatch, f"mysql://someone:{PASSWORD}@127.0.0.1/db", command)
    assert "unsupported warehouse URL scheme" in output and "mysql://someone:***@127.0.0.1/db" in output


def test_a_postgres_url_without_a_database_is_a_config_error(data_dir, monkeypatch):
    output = _refused(data_dir, monkeypatch, f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432", ["status"])
    assert "needs a host and a database name" in output


def test_an_unreachable_server_is_a_config_error(data_dir, monkeypatch):
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    output = _refused(data_dir, monkeypatch, f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/canonry", ["status"])
    assert "cannot connect to the PostgreSQL warehouse postgresql://postgres:***@127.0.0.1:1/canonry" in output


@pytest.mark.postgres
def test_a_refused_login_is_a_config_error(data_dir, monkeypatch):
    """The server here trusts local logins (no password is checked), so the refused login is a role that does
    not exist: the same failure path (the server refuses the connection) as a wrong password."""
    require_postgres()
    output = _refused(data_dir, monkeypatch, f"postgresql://no_such_role:{PASSWORD}@127.0.0.1:5432/postgres",
                      ["status"])
    assert "no_such_role" in output and "does not exist" in output


@pytest.mark.postgres
def test_a_missing_database_is_a_config_error(data_dir, monkeypatch):
    require_postgres()
    output = _refused(data_dir, monkeypatch, f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/canonry_missing_db",
                      ["sync"])
    assert "canonry_missing_db" in output and "createdb" in output


def test_a_password_reference_that_does_not_resolve_is_a_config_error(data_dir, monkeypatch):
    monkeypatch.delenv("CANONRY_TEST_NO_SUCH_PASSWORD", raising=False)
    output = _refused(data_dir, monkeypatch,
                      "postgresql://postgres:env:CANONRY_TEST_NO_SUCH_PASSWORD@127.0.0.1:5432/canonry", ["status"])
    assert "password reference does not resolve" in output
