"""A change goes live through a shadow build: `canonry shadow` of a changed mapping seed reports exactly the
rows and columns it changes, with no API call and `canonical` untouched; `promote -c` swaps one connection's
rows in (a canary), `promote` the rest (`canonical` then equals the shadow), `rollback` restores the
previous values, rebuilt from raw with the kept copy of the checkout's project. Each promote pins what it put
live (an ordinary build that would undo it is refused) and the rollback to the checkout lifts the pins.
A source change that drops a field is named with its count, and `--fail-on` fails; promoted for one
connection, it is rolled back from the rows kept in canonical__previous when no copy of the code is left."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from canonry.cli import app
from canonry.rollout.diff import diff
from canonry.rollout.pins import conflicts, pins, selected_tables
from canonry.rollout.promote import promote, rollback
from canonry.transform import build_for, pin_refusal
from canonry.warehouse import dbt_manifest_path as manifest_path
from tests.helpers import clear_request_log, query, request_log

STATUS = "dbt/seeds/map_ats__application_status.csv"


def applications() -> dict[str, dict]:
    return {r["application_id"]: r for r in query("select * from canonical.ats_applications")}


def pinned() -> dict[str, tuple[str, str]]:
    return {cid: (p.version.manifest_hash, p.action) for cid, p in pins().items()}


def remap_active(world) -> tuple[object, dict[str, str]]:
    """A project copy where Greenhouse's `active` maps to OTHER; the rows it must change (id -> connection)."""
    project = world.project_copy("remapped")
    seed = project / "seeds" / "map_ats__application_status.csv"
    text = seed.read_text()
    assert "greenhouse,active,ACTIVE\n" in text
    seed.write_text(text.replace("greenhouse,active,ACTIVE\n", "greenhouse,active,OTHER\n"))
    affected = {r["application_id"]: r["connection_id"] for r in query(
        "select application_id, connection_id from canonical.ats_applications where status = 'ACTIVE'")}
    return project, affected


def test_mapping_change_shadow_canary_promote_rollback(world):
    before = applications()
    project, affected = remap_active(world)
    assert {c for c in affected.values()} == {"greenhouse-acme", "greenhouse-beta"}
    for server in world.servers.values():
        clear_request_log(server)

    done = world.cli("shadow", "--project-dir", str(project), "--json", "--report", str(world.tmp / "shadow.md"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    changed = {t["table"]: t for t in report["tables"] if t["added"] or t["removed"] or t["changed"]}
    assert list(changed) == ["ats_applications"]
    apps = changed["ats_applications"]
    assert (apps["changed"], apps["added"], apps["removed"]) == (len(affected), 0, 0)
    assert [(c["column"], c["changed"]) for c in apps["columns"]] == [("status", len(affected))]
    assert all(s["id"] in affected and (s["before"], s["after"]) == ("ACTIVE", "OTHER")
               for s in apps["columns"][0]["samples"])
    shifts = {e["value"]: (e["before"], e["after"]) for e in apps["enums"]}
    assert shifts["ACTIVE"][0] - shifts["ACTIVE"][1] == len(affected)
    assert shifts["OTHER"][1] - shifts["OTHER"][0] == len(affected) == report["totals"]["other"]
    assert "`status`: " + str(len(affected)) in (world.tmp / "shadow.md").read_text()
    # Built from raw: no provider was called; the live table is as it was.
    assert [r for s in world.servers.values() for r in request_log(s) if not r["path"].startswith("/_sandbox")] == []
    assert applications() == before
    assert query("select count(*) as n from ops.rollout_versions where action = 'shadow'")[0]["n"] > 0

    # Canary: greenhouse-beta's rows only.
    canary = world.cli("promote", "-c", "greenhouse-beta")
    assert canary.returncode == 0, canary.stderr
    assert "greenhouse-beta" in canary.stdout and "swapped" in canary.stdout
    now = applications()
    for application_id, row in now.items():
        expected = "OTHER" if affected.get(application_id) == "greenhouse-beta" else before[application_id]["status"]
        assert row["status"] == expected, application_id
    assert not diff(connections=["greenhouse-acme"]).empty()  # acme still differs from the shadow
    assert diff(connections=["greenhouse-beta"]).empty()
    # Durable: beta is pinned to the shadow's code (acme's rows are the checkout's: no pin needed), so an
    # ordinary build of the lineage, which would rebuild beta's rows with the checkout's code, is refused.
    shadow_hash = query("select manifest_hash from ops.rollout_versions where action = 'canary'")[0]["manifest_hash"]
    assert pinned() == {"greenhouse-beta": (shadow_hash, "promote -c greenhouse-beta")}
    refused = build_for(["greenhouse"])
    assert not refused.success and not refused.nodes
    assert "dbt build refused" in refused.error and "greenhouse-beta pinned to dbt code " + shadow_hash[:12] \
        in refused.error and "`canonry rollout unpin -c greenhouse-beta`" in refused.error, refused.error
    assert applications() == now
    # Only builds of tables a pinned connection feeds are held: a CRM lineage is not (read from the manifest).
    crm = selected_tables(manifest_path(), ["build", "--select", "source:hubspot+", "--indirect-selection", "x"])
    assert crm and all(t.startswith("crm_") for t in crm) and conflicts(crm, None) == []
    assert "ats_applications" in selected_tables(manifest_path(), ["build", "--select", "source:greenhouse+"])
    assert selected_tables(manifest_path(), ["build", "--select", "@source:greenhouse,resource_type:seed"]) == set()

    promoted = world.cli("promote", "--json")
    assert promoted.returncode == 0, promoted.stderr
    outcome = json.loads(promoted.stdout)
    assert "ats_applications" in outcome["swapped"] and outcome["version"]["manifest_hash"]
    assert diff().empty()  # canonical equals the shadow
    recorded = query("select action, manifest_hash, git_commit from ops.rollout_versions "
                     "where table_name = 'ats_applications' order by recorded_at")
    assert [r["action"] for r in recorded] == ["shadow", "baseline", "canary", "promote"]
    assert recorded[-1]["manifest_hash"] == recorded[0]["manifest_hash"] == outcome["version"]["manifest_hash"]
    # Every connection now runs code the checkout does not build: all pinned, and `canonry status` says so.
    assert outcome["pinned"] == {"greenhouse-acme": shadow_hash, "greenhouse-beta": shadow_hash}
    status = CliRunner().invoke(app, ["status"], terminal_width=200)
    assert f"Pinned: greenhouse-acme pinned to dbt code {shadow_hash[:12]}" in status.output, status.output
    assert "canonry rollout unpin -c greenhouse-beta" in status.output

    # Rolled back by rebuilding from raw with the copy of the checkout's dbt project kept at the first
    # promote (its baseline); that is the checkout's code again, so the pins are lifted.
    rolled = world.cli("rollback", "--json")
    assert rolled.returncode == 0, rolled.stderr
    result = json.loads(rolled.stdout)
    assert "ats_applications" in result["rebuilt"] and result["swapped"] == []
    assert sorted(result["unpinned"]) == ["greenhouse-acme", "greenhouse-beta"] and pinned() == {}
    assert applications() == before
    assert pin_refusal(["build"], "dbt build") is None


def test_a_dropped_source_field_is_named_and_fails_the_gate(world):
    project = world.project_copy("dropped")
    model = project / "models" / "staging" / "greenhouse" / "stg_greenhouse__applications.sql"
    text = model.read_text()
    field = "{{ json_str('payload', 'source.public_name') }} as source_name"
    assert field in text
    model.write_text(text.replace(field, "cast(null as varchar) as source_name"))
    sourced = query("select count(*) as n from canonical.ats_applications where source is not null")[0]["n"]
    assert sourced > 0

    done = world.cli("shadow", "--project-dir", str(project), "--connection", "greenhouse-acme",
                     "--fail-on", "ats_applications.source=0")
    assert done.returncode == 1, done.stdout + done.stderr
    acme = query("select count(*) as n from canonical.ats_applications where source is not null "
                 "and connection_id = 'greenhouse-acme'")[0]["n"]
    assert f"`source`: {acme} value(s) changed" in done.stdout
    assert f"fail-on: ats_applications.source = {acme} exceeds --fail-on ats_applications.source=0" in done.stderr
    bad = CliRunner().invoke(app, ["shadow", "--fail-on", "rows>3"], terminal_width=200)
    assert bad.exit_code == 2 and "METRIC=N" in bad.output

    # Promoted anyway for acme (a canary), then rolled back where no copy of the previous code was kept
    # (removed here): the rows kept at the promote in canonical__previous are put back instead.
    # (In process: the commands' CLI is shown above, and this process has dbt loaded already.)
    before = applications()
    canary = promote(["greenhouse-acme"])
    assert canary.success and "ats_applications" in canary.swapped, canary.not_restored
    assert not any(r["source"] for r in applications().values() if r["connection_id"] == "greenhouse-acme")
    assert [cid for cid, (_, action) in pinned().items() if action == "promote -c greenhouse-acme"] == \
        ["greenhouse-acme"]
    for kept in (world.tmp / "data" / "rollouts" / "versions").iterdir():
        shutil.rmtree(kept)
    rolled = rollback()
    assert rolled.success and "ats_applications" in rolled.swapped and rolled.rebuilt == [], rolled.not_restored
    assert pinned() == {} and applications() == before
