"""One world for the reverse-ETL tests (package scope): three CRM sandboxes over real HTTP, their connections
(write-back enabled), one sync each, and one dbt build + GE gate of every push model (dbt parse alone costs
~20 s, so the tests share this warehouse and run in file order: test_modes.py, whose syncs write other
objects and fields than the lead scores and which clears the sandboxes' logs when done, then test_push.py,
then test_push_dagster.py, whose Dagster runs rebuild only the marts its sync reads).
Syncs the tests write live in CANONRY_SYNCS_DIR (a temporary directory)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from canonry.config import ConnectionsFile
from canonry.pipeline import sync
from canonry.reverse_etl import GateVerdict, gates
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer
from canonry.sandbox.salesforce import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI
from canonry.secrets import store_secret
from canonry.validation import load_connections
from tests.helpers import query
from tests.sources.test_salesforce import oauth_tokens

SCALE = 60
PIPEDRIVE_SCORE_FIELD = "c4a1e5c07e5c0e5c0e5c0e5c0e5c0e5c0e5c0e51"
MODELS = {"hubspot": "rev_hubspot__contacts", "salesforce": "rev_salesforce__contacts",
          "pipedrive": "rev_pipedrive__persons"}
SCORE_COLUMN = {"hubspot": "canonry_lead_score", "salesforce": "Canonry_Lead_Score__c",
                "pipedrive": PIPEDRIVE_SCORE_FIELD}
OBJECT = {"hubspot": "contacts", "salesforce": "Contact", "pipedrive": "persons"}
# The models of the shipped syncs (reverse_etl/*.yml), gated once with the three above.
SYNC_MODELS = ["rev_hubspot__companies", "rev_hubspot__deals", "rev_hubspot__contacts_from_hires",
               "rev_salesforce__accounts", "rev_salesforce__opportunities", "rev_salesforce__leads",
               "rev_pipedrive__organizations", "rev_pipedrive__deals"]
WRITE_BACK = {"hubspot": ["contacts", "companies", "deals"],
              "salesforce": ["contacts", "accounts", "opportunities", "leads"],
              "pipedrive": ["persons", "organizations", "deals"]}


@dataclass
class World:
    tmp: Path
    config_path: Path
    servers: dict[str, SandboxServer]
    connections: ConnectionsFile
    salesforce_token: str
    verdicts: dict[str, GateVerdict] = field(default_factory=dict)

    def connection_id(self, slug: str) -> str:
        return f"{slug}-acme"

    def resync_and_gate(self, models: list[str] | None = None) -> None:
        for connection in self.connections.connections:
            result = sync(connection)
            assert result.status == "success", result.error
        self.verdicts.update(gates(models or list(MODELS.values()), providers=list(MODELS)))
        assert all(v.passed for v in self.verdicts.values()), {m: v.failed_checks for m, v in self.verdicts.items()}


@pytest.fixture(scope="package")
def world(tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("retl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CANONRY_DATA_DIR", str(tmp / "data"))
        mp.delenv("CANONRY_WAREHOUSE", raising=False)
        mp.setenv("CANONRY_KEY_FILE", str(tmp / "keys" / "master.key"))
        servers = {slug: start_sandbox(slug, scale=SCALE) for slug in MODELS}
        try:
            mp.setenv("RETL_HUBSPOT_TOKEN", DEFAULT_TOKENS["hubspot"])
            mp.setenv("RETL_PIPEDRIVE_TOKEN", DEFAULT_TOKENS["pipedrive"])
            mp.setenv("RETL_SF_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
            tokens = oauth_tokens(servers["salesforce"])
            store_secret("local:salesforce-acme", json.dumps({
                **tokens, "token_endpoint": servers["salesforce"].base_url + "/services/oauth2/token",
                "client_id": DEFAULT_CLIENT_ID}))
            entries = [
                {"id": "hubspot-acme", "tenant": "acme", "provider": "hubspot",
                 "auth": {"kind": "api_key", "secret": "env:RETL_HUBSPOT_TOKEN"},
                 "base_url": servers["hubspot"].base_url,
                 "write_back": {"enabled": True, "objects": WRITE_BACK["hubspot"]}},
                {"id": "salesforce-acme", "tenant": "acme", "provider": "salesforce",
                 "auth": {"kind": "oauth2", "secret": "local:salesforce-acme", "client_id": DEFAULT_CLIENT_ID,
                          "client_secret": "env:RETL_SF_CLIENT_SECRET", "redirect_uri": DEFAULT_REDIRECT_URI},
                 "base_url": servers["salesforce"].base_url,
                 "write_back": {"enabled": True, "objects": WRITE_BACK["salesforce"]}},
                {"id": "pipedrive-acme", "tenant": "acme", "provider": "pipedrive",
                 "auth": {"kind": "api_key", "secret": "env:RETL_PIPEDRIVE_TOKEN"},
                 "base_url": servers["pipedrive"].base_url,
                 "write_back": {"enabled": True, "objects": WRITE_BACK["pipedrive"]}},
            ]
            config_path = tmp / "connections.yml"
            config_path.write_text(yaml.safe_dump({"connections": entries}, sort_keys=False))
            mp.setenv("CANONRY_CONFIG", str(config_path))
            world = World(tmp, config_path, servers, load_connections(config_path), tokens["access_token"])
            mp.setenv("CANONRY_SYNCS_DIR", str(tmp / "syncs"))
            (tmp / "syncs").mkdir()
            world.resync_and_gate([*MODELS.values(), *SYNC_MODELS])
            yield world
        finally:
            for server in servers.values():
                server.stop()


# -- reading the sandboxes and the warehouse ----------------------------------------------------------
def model_scores(slug: str) -> dict[str, int]:
    """external id -> desired lead score, from the built model."""
    column = SCORE_COLUMN[slug]
    rows = query(f'select external_id, "{column}" as score from reverse_etl.{MODELS[slug]}')
    return {str(r["external_id"]): int(r["score"]) for r in rows}


def provider_scores(server: SandboxServer, slug: str) -> dict[str, int | None]:
    """record id -> the lead score the sandbox holds (None: never written)."""
    records = requests.get(f"{server.base_url}/_sandbox/truth/{OBJECT[slug]}", timeout=30).json()["records"]
    out = {}
    for item in records:
        if item["deleted"]:
            continue
        body = item["record"]
        if slug == "hubspot":
            value = body["properties"].get("canonry_lead_score")
        elif slug == "salesforce":
            value = body.get("Canonry_Lead_Score__c")
        else:
            value = (body.get("custom_fields") or {}).get(PIPEDRIVE_SCORE_FIELD)
        out[str(item["id"])] = None if value in (None, "") else int(float(value))
    return out


def write_log(server: SandboxServer, slug: str) -> list[dict]:
    """Successful writes to the pushed object, one entry per record written: {id, operation}."""
    entries = requests.get(f"{server.base_url}/_sandbox/{slug}/writes", timeout=30).json()["writes"]
    out = []
    for entry in entries:
        if slug == "pipedrive":
            if entry["object"] == "persons" and entry["status"] < 300:
                out.append({"id": str(entry["id"]), "operation": entry["method"]})
        elif entry["object"] == OBJECT[slug] and entry["success"]:
            out.append({"id": str(entry["id"]), "operation": entry["operation"]})
    return out


def clear_write_log(server: SandboxServer, slug: str) -> None:
    requests.delete(f"{server.base_url}/_sandbox/{slug}/writes", timeout=30).raise_for_status()


def reject_writes(server: SandboxServer, slug: str, ids: list[str], message: str) -> None:
    """Make the sandbox refuse writes to these records (per record, inside a batch)."""
    if slug == "hubspot":
        body = {"rules": [{"object": "contacts", "ids": ids, "message": message}]}
        requests.post(f"{server.base_url}/_sandbox/hubspot/write_failures", json=body, timeout=30).raise_for_status()
    elif slug == "salesforce":
        body = {"rules": [{"object": "Contact", "ids": ids, "message": message}]}
        requests.post(f"{server.base_url}/_sandbox/salesforce/write_failures", json=body,
                      timeout=30).raise_for_status()
    else:
        requests.post(f"{server.base_url}/_sandbox/pipedrive/write_failures",
                      json={"object": "persons", "ids": ids, "status": 400, "error": message},
                      timeout=30).raise_for_status()


def clear_rejections(server: SandboxServer, slug: str) -> None:
    if slug == "pipedrive":
        requests.delete(f"{server.base_url}/_sandbox/pipedrive/write_failures", timeout=30).raise_for_status()
    else:
        requests.post(f"{server.base_url}/_sandbox/{slug}/write_failures", json={"rules": []},
                      timeout=30).raise_for_status()


def write_requests(server: SandboxServer) -> list[dict]:
    """API requests that could write (POST/PATCH/PUT/DELETE); reads by POST and token refreshes excluded."""
    log = requests.get(f"{server.base_url}/_sandbox/requests", timeout=30).json()["requests"]
    return [r for r in log if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
            and not r["path"].startswith("/_sandbox") and "oauth" not in r["path"]
            and not r["path"].endswith(("/batch/read", "/search"))]
