"""Checkpoints: a run that fails mid-way keeps every committed page (status `partial`), the next run
resumes from the checkpoint instead of re-reading; a run that fails like the previous one without
moving its checkpoint is reported `stalled` (ops and status) instead of looping."""

from __future__ import annotations

import json
import math

import requests
from typer.testing import CliRunner

from canonry.cli import app
from canonry.pipeline import resource_states, sync
from canonry.sandbox import DEFAULT_TOKENS
from tests.helpers import clear_request_log, query, request_log, set_faults, truth

runner = CliRunner()


def test_failed_run_keeps_its_checkpoints_and_the_next_run_resumes(data_dir, sandbox_factory, connect_sandbox,
                                                                    monkeypatch):
    monkeypatch.setenv("CANONRY_CHECKPOINT_PAGES", "1")
    server = sandbox_factory("hubspot", scale=450)
    connection = connect_sandbox(server, "hubspot-ckpt", objects=["contacts"])
    set_faults(server, revoke_after=3)  # list pages 1-3 answer, then 401
    first = sync(connection)
    assert first.status == "partial" and first.error.error_class == "auth_expired"
    assert first.checkpoints == 3 and first.records["contacts"] == 300
    from canonry.pipeline import dlt_pipeline

    resume = resource_states(dlt_pipeline(connection), "hubspot")["contacts"]["resume"]
    assert resume["phase"] == "list" and resume["after"]

    requests.post(f"{server.base_url}/_sandbox/tokens", json={"add": [DEFAULT_TOKENS["hubspot"]]},
                  timeout=10).raise_for_status()
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    lists = [r for r in request_log(server) if r["path"] == "/crm/v3/objects/contacts" and "archived=false" in r["query"]]
    assert len(lists) == 2 and all("after=" in r["query"] for r in lists)  # pages 4-5 only
    raw = query("select count(*) as n, count(distinct remote_id) as d from raw_hubspot.contacts")[0]
    assert raw["n"] == raw["d"] == 450  # nothing lost, nothing read twice
    assert "resume" not in resource_states(dlt_pipeline(connection), "hubspot")["contacts"]


def test_a_run_that_fails_the_same_way_without_progress_is_stalled(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=50)
    connection = connect_sandbox(server, "hubspot-stall", objects=["contacts"])
    set_faults(server, invalid_json_rate=1.0)
    first, second = sync(connection), sync(connection)
    assert first.status == second.status == "failed"
    assert not first.stalled and second.stalled
    runs = query("select status, stalled, error_class from ops.sync_runs order by finished_at")
    assert [(r["status"], r["stalled"]) for r in runs] == [("failed", False), ("stalled", True)]
    status = json.loads(runner.invoke(app, ["status", "--json"]).output)[0]
    assert status["state"] == "failing" and status["stalled"] and status["error_classes"] == ["provider_contract"]
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "stalled" in table.output


def test_a_kit_resumable_pass_continues_at_its_position_not_page_one(data_dir, sandbox_factory, connect_sandbox,
                                                                      monkeypatch):
    """Pipedrive persons through `canonry.checkpoints.ResumablePass`: v2 pages of 500, a checkpoint per page;
    the token dies after two pages. The next run asks for the pages after them only (each by its cursor),
    then the catch-up pass (the pass began in an earlier run): nothing lost, nothing read twice."""
    monkeypatch.setenv("CANONRY_CHECKPOINT_PAGES", "1")
    server = sandbox_factory("pipedrive", scale=600)
    connection = connect_sandbox(server, "pipedrive-ckpt", objects=["persons"])
    set_faults(server, revoke_after=2)
    first = sync(connection)
    assert first.status == "partial" and first.error.error_class == "auth_expired"
    assert first.checkpoints == 2 and first.records["persons"] == 1000
    from canonry.pipeline import dlt_pipeline

    assert resource_states(dlt_pipeline(connection), "pipedrive")["persons"]["resume"]["position"]

    requests.post(f"{server.base_url}/_sandbox/tokens", json={"add": [DEFAULT_TOKENS["pipedrive"]]},
                  timeout=10).raise_for_status()
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    lists = [r for r in request_log(server) if r["path"] == "/api/v2/persons"]
    full_pass = [r for r in lists if "updated_since" not in r["query"]]
    persons = len(truth(server, "persons"))
    assert len(full_pass) == math.ceil(persons / 500) - 2 and all("cursor=" in r["query"] for r in full_pass)
    assert len(lists) == len(full_pass) + 1                                # + the catch-up pass
    raw = query("select count(*) as n, count(distinct remote_id) as d from raw_pipedrive.persons")[0]
    assert raw["n"] == raw["d"] == persons
    assert "resume" not in resource_states(dlt_pipeline(connection), "pipedrive")["persons"]


def test_lever_opportunities_resume_with_their_interviews_and_offers(data_dir, sandbox_factory, connect_sandbox,
                                                                     monkeypatch):
    """Lever's opportunities pass carries each page's interviews and offers (one call per opportunity and
    list): a checkpoint per page; the token dies while the second page's children are read. The first page
    is committed with its children, the second is not committed without them: the next run starts at the
    second page (its `next` token), not at page one, and every opportunity ends with exactly one interviews
    row and one offers row."""
    monkeypatch.setenv("CANONRY_CHECKPOINT_PAGES", "1")
    server = sandbox_factory("lever", scale=150)
    connection = connect_sandbox(server, "lever-ckpt", objects=["opportunities", "interviews", "offers"])
    # Page one: 1 list call + 2 child calls per opportunity; then page two's list call and 20 child calls.
    set_faults(server, revoke_after=1 + 2 * 100 + 1 + 20)
    first = sync(connection)
    assert first.status == "partial" and first.error.error_class == "auth_expired", first.error
    assert first.checkpoints == 1 and first.records["opportunities"] == 100
    for table in ("interviews", "offers"):
        assert query(f"select count(*) as n from raw_lever.{table}")[0]["n"] == 100, table
    first_page = {r["remote_id"] for r in query("select remote_id from raw_lever.opportunities")}
    from canonry.pipeline import dlt_pipeline

    assert resource_states(dlt_pipeline(connection), "lever")["opportunities"]["resume"]["position"]

    requests.post(f"{server.base_url}/_sandbox/tokens", json={"add": [DEFAULT_TOKENS["lever"]]},
                  timeout=10).raise_for_status()
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    lists = [r for r in request_log(server) if r["path"] == "/v1/opportunities"]
    assert "offset=" in lists[0]["query"]                       # the second page, by its token
    opportunities = truth(server, "opportunities")
    read_twice = [r for r in request_log(server) if r["path"].endswith("/interviews")
                  and r["path"].split("/")[3] in first_page]
    assert read_twice == []                                     # page one's children are not read again
    for table in ("opportunities", "interviews", "offers"):
        raw = query(f"select count(*) as n, count(distinct remote_id) as d from raw_lever.{table}")[0]
        assert raw["n"] == raw["d"] == len(opportunities), table
