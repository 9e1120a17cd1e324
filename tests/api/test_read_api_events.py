"""Outbound change events over real HTTP, on the read API's world (tests/api/conftest.py; this module runs
after test_read_api.py on the same worker): subscribers (the world's, and one added through the CLI), the
changes of real syncs + dbt builds captured (the world's mid-walk load, then one more), signed POSTs verified with the Standard Webhooks reference library (a verifier we did not
write), retries with back-off, ordering per record, a dead subscriber's dead letters replayed to it once it
is up, tenant isolation, and no secret in anything the run wrote."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from canonry.api.resources import EVENTS_PATH
from canonry.events.delivery import deliver
from tests.api.conftest import ApiWorld, MidWalkLoad
from tests.helpers import mutate, query
from tests.observability.servers import serve


class Receiver:
    """Records every POST (headers, raw body, the status it answered); the first `REFUSALS` requests about a
    record in `refuse` are answered 500 (the issue's case: 500 three times, then 200)."""

    REFUSALS = 3

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes, int]] = []
        self.refuse: dict[str, int] = {}

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        record_id = json.loads(body)["data"]["id"]
        status = 500 if self.refuse.get(record_id, 0) > 0 else 200
        if status == 500:
            self.refuse[record_id] -= 1
        self.requests.append((dict(request.headers), body, status))
        return JSONResponse({}, status_code=status)

    def accepted(self, secret: str) -> list[dict]:
        """The verified events answered 200, in arrival order (verification raises on a bad signature)."""
        return [Webhook(secret).verify(body, headers) for headers, body, status in self.requests if status == 200]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


def _subscribe(world: ApiWorld, tenant: str, url: str, *options: str) -> tuple[str, str]:
    """(subscriber id, signing secret) from `canonry events subscribe`."""
    done = world.cli("events", "subscribe", "--tenant", tenant, "--url", url, *options)
    return done.stderr.split("subscriber ")[1].split()[0], done.stdout.strip()


def _deliver_until(world: ApiWorld, settled, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with world.environment():
        while not settled():
            assert time.monotonic() < deadline, "deliveries did not settle"
            deliver()
            time.sleep(0.15)


def _contact_ids(world: ApiWorld, remote_ids: list[str]) -> dict[str, str]:
    with world.environment():
        rows = query("select remote_id, contact_id from canonical.crm_contacts where connection_id = 'hubspot-acme'")
    return {r["remote_id"]: r["contact_id"] for r in rows if r["remote_id"] in remote_ids}


def _states(world: ApiWorld, subscriber_id: str) -> dict[str, int]:
    with world.environment():
        rows = query("select status, count(*) as n from ops.deliveries where subscriber_id = ? group by status",
                     [subscriber_id])
    return {r["status"]: r["n"] for r in rows}


@pytest.fixture(scope="module")
def events_world(api_world: ApiWorld, mid_walk_load: MidWalkLoad):
    """The world's two acme subscribers (baseline before the mid-walk load) and a globex one added through
    the CLI; the mid-walk load captured through the CLI; then one contact (`twice`) updated again by a second
    sync + build, captured too. The `good` receiver listens for the whole module and refuses the first request
    about `twice`."""
    receiver = Receiver()
    good_id, good_secret, good_port = api_world.subscribers["good"]
    with serve(receiver.app(), good_port), serve(Receiver().app()) as globex_url:
        globex = _subscribe(api_world, "globex", globex_url + "/hook")
        captured = api_world.cli("events", "capture").stdout
        changed = mid_walk_load.changed
        twice = next(r for r in changed["update"] if r not in changed["create"] and r not in changed["delete"])
        mutate(api_world.servers["hubspot"], "contacts", update=[twice])
        api_world.sync_and_build("hubspot-acme")
        api_world.cli("events", "capture")
        ids = _contact_ids(api_world, [*changed["create"], *changed["update"], *changed["delete"]])
        receiver.refuse = {ids[twice]: Receiver.REFUSALS}
        yield {"receiver": receiver, "good": (good_id, good_secret), "down": api_world.subscribers["down"][:2],
               "globex": globex, "down_port": api_world.subscribers["down"][2], "first": changed, "ids": ids,
               "twice": ids[twice], "captured": captured}


def test_changes_arrive_signed_at_least_once_in_order_per_record(api_world, events_world):
    w = events_world
    receiver, (good_id, good_secret) = w["receiver"], w["good"]
    assert re.search(r"^\d+ event\(s\), \d+ delivery\(ies\) queued$", w["captured"].strip()), w["captured"]
    _deliver_until(api_world, lambda: _states(api_world, good_id).get("pending", 0) == 0)

    accepted = receiver.accepted(good_secret)
    ids, first = w["ids"], w["first"]
    # One event per record per capture, for its net change (the sandbox may update or delete a contact it
    # just created): deleted wins, a record created in the load is `created`, the others `updated`.
    changed = {*first["create"], *first["update"], *first["delete"]}
    net = {r: "deleted" if r in first["delete"] else "created" if r in first["create"] else "updated"
           for r in changed if not (r in first["delete"] and r in first["create"])}
    expected = {(f"crm.contact.{action}", ids[r]) for r, action in net.items()}
    got = [(e["type"], e["data"]["id"]) for e in accepted]
    assert set(got) - {("crm.contact.updated", w["twice"])} == expected - {("crm.contact.updated", w["twice"])}
    # `twice`: its first event was refused three times and retried (4 attempts allowed); its second waited
    # behind it, then came after it.
    twice = [e for e in accepted if e["data"]["id"] == w["twice"]]
    assert len(twice) == 2 and twice[0]["data"]["sequence"] < twice[1]["data"]["sequence"]
    refused = [(h["webhook-id"], h["webhook-timestamp"]) for h, _, status in receiver.requests if status == 500]
    assert len(refused) == Receiver.REFUSALS and len({message_id for message_id, _ in refused}) == 1
    retried = [h for h, _, status in receiver.requests if status == 200 and h["webhook-id"] == refused[0][0]]
    assert len(retried) == 1  # the same message id on every retry: receivers de-duplicate on it
    later = [i for i, (h, _, _) in enumerate(receiver.requests) if json.loads(receiver.requests[i][1])["data"]["id"]
             == w["twice"]]
    assert [receiver.requests[i][2] for i in later] == [500] * Receiver.REFUSALS + [200, 200]
    # The delete carries the record as last built (is_deleted true); every body is the read API's record.
    deleted = next(e for e in accepted if e["type"] == "crm.contact.deleted")
    assert deleted["data"]["record"]["is_deleted"] is True and deleted["data"]["tenant_id"] == "acme"
    # A signature made with another subscriber's secret does not verify.
    headers, body, _ = receiver.requests[-1]
    with pytest.raises(Exception, match="signature"):
        Webhook(w["down"][1]).verify(body, headers)
    with api_world.environment():
        log = query("select attempt, status, ok from ops.delivery_attempts where subscriber_id = ? "
                    "order by attempted_at", [good_id])
    assert sum(1 for r in log if not r["ok"]) == Receiver.REFUSALS and all(r["status"] == 200 for r in log if r["ok"])


def test_dead_subscriber_ends_in_dead_letters_then_replay_delivers(api_world, events_world):
    w = events_world
    down_id, down_secret = w["down"]
    _deliver_until(api_world, lambda: _states(api_world, down_id).get("pending", 0) == 0)
    dead = _states(api_world, down_id)
    assert dead.get("dead", 0) >= 6 and "delivered" not in dead
    status = api_world.cli("events", "status").stdout
    assert f"{down_id}" in status and f"{dead['dead']} dead" in status and "events replay" in status
    assert "ConnectionError" in status or "Connection" in status
    overall = api_world.cli("status")
    assert f"subscriber {down_id}: {dead['dead']} dead letter(s)" in overall.stderr

    # The globex subscriber got nothing: no globex record changed, acme's events are not its tenant's.
    with api_world.environment():
        assert query("select count(*) as n from ops.deliveries where subscriber_id = ?", [w["globex"][0]])[0]["n"] == 0

    receiver = Receiver()
    with serve(receiver.app(), w["down_port"]):
        replayed = api_world.cli("events", "replay", "--subscriber", down_id).stdout
        assert f"{dead['dead']} dead letter(s) queued again" in replayed
        out = json.loads(api_world.cli("events", "deliver", "--json").stdout)
        assert out["delivered"] >= dead["dead"]
    assert len(receiver.accepted(down_secret)) == dead["dead"]
    assert _states(api_world, down_id) == {"delivered": dead["dead"]}


def test_no_secret_in_anything_the_run_wrote(api_world, events_world):
    secrets = [events_world[k][1] for k in ("good", "down", "globex")]
    assert all(s.startswith("whsec_") for s in secrets)
    needles = [s.encode() for s in secrets] + [s.removeprefix("whsec_").encode() for s in secrets]
    for path in Path(api_world.env["CANONRY_DATA_DIR"]).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [n for n in needles if n in data], f"a signing secret in {path}"
    listed = api_world.cli("events", "list", "--json").stdout
    assert not [s for s in secrets if s in listed or s.removeprefix("whsec_") in listed]
    assert "secret_ref" not in listed


EVENT_OPERATIONS = [(EVENTS_PATH, "GET"), (EVENTS_PATH, "POST"), (EVENTS_PATH + "/{id}", "DELETE")]


@pytest.mark.parametrize(("path", "method"), EVENT_OPERATIONS, ids=[f"{m} {p}" for p, m in EVENT_OPERATIONS])
def test_subscriber_operations_conform_to_the_served_openapi_document(path, method, api_world):
    """Schemathesis over the events operations (bounded examples): no server error, documented answers."""
    operation = schemathesis.openapi.from_url(api_world.base_url + "/openapi.json")[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def conforms(case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {api_world.keys['acme']}"},
                               excluded_checks=[positive_data_acceptance])  # a URL of any shape is refused: 422

    conforms()


def test_subscribers_through_the_api_are_per_tenant(api_world):
    acme, globex = ({"Authorization": f"Bearer {api_world.keys[t]}"} for t in ("acme", "globex"))
    url = api_world.base_url + EVENTS_PATH
    with serve(Receiver().app()) as receiver_url:
        added = requests.post(url, json={"url": receiver_url + "/hook", "events": ["ats.*"], "max_attempts": 3},
                              headers=acme, timeout=30)
        assert added.status_code == 201, added.text
        created = added.json()
        assert created["secret"].startswith("whsec_") and created["tenant"] == "acme"
        sid = created["subscriber_id"]
        mine = requests.get(url, headers=acme, timeout=30).json()["results"]
        assert [s for s in mine if s["subscriber_id"] == sid] and "secret" not in str(mine)
        assert sid not in str(requests.get(url, headers=globex, timeout=30).json())
        assert requests.delete(f"{url}/{sid}", headers=globex, timeout=30).status_code == 404
        assert requests.delete(f"{url}/{sid}", headers=acme, timeout=30).status_code == 204
    assert sid not in api_world.cli("events", "list").stdout
    refused = requests.post(url, json={"url": "http://169.254.169.254/latest"}, headers=acme, timeout=30)
    assert refused.status_code == 422 and "url" in refused.json()["error"]["message"]
    assert requests.post(url, data="nope", headers=acme, timeout=30).status_code == 400
    crm_only = {"Authorization": f"Bearer {api_world.create_key('acme', '--scope', 'crm:read')}"}
    assert requests.get(url, headers=crm_only, timeout=30).status_code == 403
