"""HubSpot's own Python SDK (hubspot-api-client), unmodified, against the sandbox: list paging, search,
batch read. Only the host is pointed at the sandbox, through the SDK's own configuration."""

from __future__ import annotations

from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)

from canonry.sandbox import DEFAULT_TOKENS
from tests.helpers import mutate, truth


def test_official_sdk_pages_searches_and_batch_reads(sandbox_factory):
    server = sandbox_factory("hubspot", scale=250)
    client = HubSpot(access_token=DEFAULT_TOKENS["hubspot"], host=server.base_url)
    expected = {r["id"]: r["record"] for r in truth(server, "contacts")}

    # Basic list paging: get_all follows paging.next.after to the end.
    everyone = client.crm.contacts.get_all(properties=["email", "firstname"])
    assert {c.id for c in everyone} == set(expected)
    first = client.crm.contacts.basic_api.get_page(limit=100, properties=["email"])
    assert len(first.results) == 100 and first.paging.next.after
    sample = first.results[0]
    assert sample.properties["email"] == expected[sample.id]["properties"]["email"]

    # Search: records modified since a time, ascending by the modification property.
    changed = mutate(server, "contacts", update=7)["update"]
    since = min(r["updated_at"] for r in truth(server, "contacts") if r["id"] in changed)
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since}]}],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["jobtitle"], limit=200)
    found = client.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert found.total == 7 and {c.id for c in found.results} == set(changed)
    assert all(c.properties["jobtitle"].startswith("updated") for c in found.results)

    # Batch read by id.
    ids = list(expected)[:5]
    batch = client.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["lastname"]))
    assert {c.id: c.properties["lastname"] for c in batch.results} == {
        i: expected[i]["properties"]["lastname"] for i in ids}
