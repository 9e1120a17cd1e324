"""The Salesforce catalog: built from describe JSON, cached, shipped, and fetched over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canonry.guard.catalog import DEFAULT_CATALOG_PATH, Catalog, load_catalog
from canonry.guard.rules_soql import check_soql

from .fakes import FakeServer

WIDGET_DESCRIBE = {
    "name": "Widget__c",
    "label": "Widget",
    "custom": True,
    "queryable": True,
    "fields": [
        {"name": "Id", "type": "id", "referenceTo": [], "relationshipName": None, "externalId": False,
         "idLookup": True, "unique": False, "filterable": True, "length": 18},
        {"name": "Name", "type": "string", "referenceTo": [], "relationshipName": None, "filterable": True},
        {"name": "Sku__c", "type": "string", "externalId": True, "unique": True, "filterable": True},
        {"name": "Color__c", "type": "picklist", "filterable": True, "picklistValues": [{"value": "red"}]},
        {"name": "Account__c", "type": "reference", "referenceTo": ["Account"],
         "relationshipName": "Account__r", "filterable": True},
        {"name": "Notes__c", "type": "textarea", "filterable": False},
    ],
    "childRelationships": [],
}


def _raw_default() -> dict:
    return json.loads(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))


def test_default_catalog_objects_sizes_and_indexes() -> None:
    catalog = Catalog.default()
    expected = {"Account", "Contact", "Lead", "Opportunity", "OpportunityStage", "User", "Task", "Event",
                "Note", "Profile", "RecordType"}
    assert expected <= {o.name for o in catalog.objects.values()}
    assert {name for name in expected if catalog.is_large(name)} == {
        "Account", "Contact", "Lead", "Opportunity", "Task", "Event"}
    account = catalog.object("account")
    assert account is not None and account.record_count and account.record_count > 100_000
    assert {"Id", "Name", "OwnerId", "CreatedDate", "SystemModstamp", "RecordTypeId", "ParentId",
            "Canonry_External_Id__c"} <= set(account.indexed_fields)
    assert "Industry" not in account.indexed_fields
    assert account.child("contacts") == "Contact"
    owner = account.parent("Owner")
    assert owner is not None and owner.reference_to == ("User",)
    assert catalog.object("Contact").field("email").indexed  # idLookup


def test_from_describes_builds_relationships_and_rules_use_it() -> None:
    describes = [*_raw_default()["describes"], WIDGET_DESCRIBE]
    catalog = Catalog.from_describes(describes, {"Widget__c": 500_000, "Account": 10})
    widget = catalog.object("Widget__c")
    assert widget is not None and catalog.is_large("Widget__c") and not catalog.is_large("Account")
    assert widget.field("Sku__c").indexed and widget.field("Account__c").indexed
    assert not widget.field("Color__c").indexed and not widget.field("Notes__c").filterable

    ok = check_soql("SELECT Id, Account__r.Name FROM Widget__c WHERE Sku__c = 'W-1' LIMIT 5", catalog)
    assert ok.verdict == "allow", ok.to_text()
    slow = check_soql("SELECT Id FROM Widget__c WHERE Color__c = 'red' LIMIT 5", catalog)
    assert slow.codes == ["SOQL_NON_SELECTIVE_FILTER"]
    bad = check_soql("SELECT Id, Account__r.Nmae FROM Widget__c WHERE Notes__c = 'x' LIMIT 5", catalog)
    assert bad.verdict == "reject"
    assert set(bad.codes) == {"SOQL_UNKNOWN_FIELD", "SOQL_FIELD_NOT_FILTERABLE", "SOQL_NON_SELECTIVE_FILTER"}
    # Account is small in this org: no large-object warnings
    assert check_soql("SELECT Id FROM Account LIMIT 5", catalog).verdict == "allow"


def test_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = Catalog.from_describes([WIDGET_DESCRIBE], {"Widget__c": 7})
    path = catalog.save(tmp_path / "cache" / "catalog.json")
    loaded = Catalog.load(path)
    assert loaded.objects == catalog.objects
    assert json.loads(path.read_text())["describes"][0]["fields"][0] == {
        "name": "Id", "type": "id", "referenceTo": [], "relationshipName": None, "externalId": False,
        "idLookup": True, "unique": False, "filterable": True}
    monkeypatch.setenv("CANONRY_SF_CATALOG", str(path))
    assert load_catalog().object("Widget__c") is not None
    assert load_catalog().object("Account") is None


def test_from_sandbox_reads_the_real_describe_endpoints(tmp_path: Path) -> None:
    describes = {d["name"]: d for d in [*_raw_default()["describes"], WIDGET_DESCRIBE]}
    counts = {"Account": 250_000, "Widget__c": 42}

    def route(method, path, query, body, headers):
        if headers.get("authorization") != "Bearer tok-123":
            return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        prefix = "/services/data/v62.0"
        if path == f"{prefix}/sobjects":
            return 200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
                {"name": "Account", "queryable": True, "custom": False},
                {"name": "Widget__c", "queryable": True, "custom": True},
                {"name": "AccountChangeEvent", "queryable": False, "custom": False},
                {"name": "ApexClass", "queryable": True, "custom": False}]}
        if path.startswith(f"{prefix}/sobjects/") and path.endswith("/describe"):
            name = path.split("/")[-2]
            return (200, describes[name]) if name in describes else (404, [{"errorCode": "NOT_FOUND"}])
        if path == f"{prefix}/limits/recordCount":
            names = query["sObjects"].split(",")
            return 200, {"sObjects": [{"count": counts[n], "name": n} for n in names if n in counts]}
        return 404, [{"errorCode": "NOT_FOUND", "message": path}]

    with FakeServer(route) as server:
        catalog = Catalog.from_sandbox(server.base_url, "tok-123", cache_path=tmp_path / "c.json")
        paths = [r["path"] for r in server.requests]
    assert sorted(o.name for o in catalog.objects.values()) == ["Account", "Widget__c"]
    assert "/services/data/v62.0/sobjects/AccountChangeEvent/describe" not in paths  # not queryable
    assert "/services/data/v62.0/sobjects/ApexClass/describe" not in paths  # not a modelled object
    assert catalog.is_large("Account") and not catalog.is_large("Widget__c")
    assert Catalog.load(tmp_path / "c.json").objects == catalog.objects
