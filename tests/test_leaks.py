"""Credentials are not data: after connecting and syncing (a refresh during the sync, a failing connection
too) with known token strings, no byte written under the data dir (warehouse, dlt pipeline dir, secret
store), no warehouse table, no dlt state, no captured log and no CLI output contains any of them."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import duckdb
from dlt.common.versioned_state import decompress_state
from typer.testing import CliRunner

from canonry.cli import app
from canonry.oauth import connect
from canonry.sandbox import DEFAULT_TOKENS
from canonry.sandbox.hubspot import DEFAULT_CLIENT_SECRET as CLIENT_SECRET
from canonry.warehouse import warehouse_path
from tests.helpers import request_log
from tests.oauth_helpers import CLIENT_SECRET_ENV, OAuthSandbox, free_port, scripted_browser

BAD_KEY = "leak-test-invalid-private-app-key-5e7f"


def _hits(needles: dict[str, str], haystack: bytes) -> list[str]:
    return [name for name, value in needles.items() if value.encode() in haystack]


def _warehouse_text(path: Path) -> bytes:
    """Every value of every table (DuckDB compresses strings on disk: read them back), and dlt's state
    decompressed."""
    chunks: list[str] = []
    conn = duckdb.connect(str(path), read_only=True)
    try:
        tables = conn.execute("select table_schema, table_name from information_schema.tables").fetchall()
        for schema, table in tables:
            rows = conn.execute(f'select * from "{schema}"."{table}"').fetchall()
            chunks.append(repr(rows))
            if table == "_dlt_pipeline_state":
                columns = [d[0] for d in conn.execute(f'select * from "{schema}"."{table}" limit 0').description]
                for row in rows:
                    chunks.append(repr(decompress_state(row[columns.index("state")])))
    finally:
        conn.close()
    assert any(t == "crm_contacts" or t == "contacts" for _, t in tables)
    return "\n".join(chunks).encode()


def test_no_credential_reaches_disk_logs_state_or_output(data_dir, sandbox_factory, tmp_path, monkeypatch, caplog):
    log_file = tmp_path / "logs" / "everything.log"
    log_file.parent.mkdir()
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(file_handler)
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    try:
        redirect = f"http://127.0.0.1:{free_port()}/callback"
        server = sandbox_factory("hubspot", scale=25, redirect_uris=(redirect,), rotate_refresh_tokens=True)
        hs = OAuthSandbox(server, tmp_path / "connections.yml", redirect, redirect)
        monkeypatch.setenv(CLIENT_SECRET_ENV, CLIENT_SECRET)
        monkeypatch.setenv("CANONRY_TEST_PRIVATE_APP", DEFAULT_TOKENS["hubspot"])
        monkeypatch.setenv("CANONRY_TEST_BAD_KEY", BAD_KEY)
        oauth_conn = hs.add("hubspot-oauth")
        hs.add("hubspot-key", auth={"kind": "api_key", "secret": "env:CANONRY_TEST_PRIVATE_APP", "client_id": None,
                                    "client_secret": None, "redirect_uri": None}, objects=["owners", "pipelines"])
        hs.add("hubspot-badkey", auth={"kind": "api_key", "secret": "env:CANONRY_TEST_BAD_KEY", "client_id": None,
                                       "client_secret": None, "redirect_uri": None}, objects=["owners"])
        logging.getLogger("canonry.test").info("connecting %s", oauth_conn.id)
        connect(oauth_conn, browser=scripted_browser, timeout=15)
        first = hs.token_set(oauth_conn)
        hs.edit_token_set(oauth_conn, expires_at=time.time() - 5)  # the sync must refresh (rotating)

        runner = CliRunner()
        for args in (["validate", "--config", str(hs.path)], ["validate", "--json", "--config", str(hs.path)],
                     ["sync", "--config", str(hs.path), "--no-transform"], ["status"], ["status", "--json"],
                     ["secret", "list"]):
            result = runner.invoke(app, args)
            outputs.append(result.output + (result.stderr if result.stderr_bytes is not None else ""))
            if args[0] == "sync":
                assert result.exit_code == 1 and "hubspot-badkey: [auth_expired]" in result.output
                assert "hubspot-oauth: " in result.output and "hubspot-key: " in result.output
        second = hs.token_set(oauth_conn)
        logging.getLogger("canonry.test").debug("token set after sync: %s", second)  # a careless debug line
        disconnect = runner.invoke(app, ["disconnect", "hubspot-oauth", "--config", str(hs.path)])
        outputs.append(disconnect.output)
        assert disconnect.exit_code == 0
    finally:
        root.removeHandler(file_handler)
        root.setLevel(previous_level)
        file_handler.close()

    assert second["access_token"] != first["access_token"]  # a refresh happened during the sync
    assert second["refresh_token"] != first["refresh_token"]  # and the refresh token rotated
    authorised = [r for r in request_log(server) if r["path"].startswith("/crm/") and r["status"] == 200]
    assert authorised, "the known tokens were really used"
    needles = {
        "first access token": first["access_token"], "first refresh token": first["refresh_token"],
        "refreshed access token": second["access_token"], "rotated refresh token": second["refresh_token"],
        "client secret": CLIENT_SECRET, "private app token": DEFAULT_TOKENS["hubspot"], "invalid key": BAD_KEY,
    }

    files = [p for p in data_dir.rglob("*") if p.is_file()]
    dlt_files = [p for p in files if "dlt" in p.relative_to(data_dir).parts]
    assert warehouse_path().exists() and len(dlt_files) > 3  # the search covers real output
    for path in files:
        assert _hits(needles, path.read_bytes()) == [], f"credential bytes in {path}"
    assert _hits(needles, _warehouse_text(warehouse_path())) == [], "credential in a warehouse table or dlt state"
    log_text = log_file.read_bytes()
    assert b"connecting hubspot-oauth" in log_text and b"token set after sync" in log_text
    assert _hits(needles, log_text) == [], "credential in the log file"
    assert _hits(needles, caplog.text.encode()) == [], "credential in captured logs"
    for output in outputs:
        assert _hits(needles, output.encode()) == [], f"credential in CLI output: {output[:200]}"
    assert "***" in log_text.decode()  # the careless debug line was masked, not dropped
