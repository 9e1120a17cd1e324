"""Drives pipedrive-python-lib (PyPI, community SDK) against a Pipedrive sandbox. Imports nothing from
Canonry. Only the base URL differs from a real run (the SDK's own `domain` argument).

    python run_pipedrive_python_lib.py BASE_URL API_TOKEN SINCE_TIMESTAMP  -> JSON on stdout
"""

import json
import sys

from pipedrive.client import Client


def every_page(method, **params):
    """v1 offset pagination as Pipedrive documents it: follow `additional_data.pagination.next_start`."""
    records, start = [], 0
    while True:
        answer = method(params={**params, "start": start, "limit": 500})
        records += answer.get("data") or []
        pagination = (answer.get("additional_data") or {}).get("pagination") or {}
        if not pagination.get("more_items_in_collection"):
            return records
        start = pagination["next_start"]


def main() -> None:
    base_url, token, since = sys.argv[1:4]
    client = Client(domain=base_url)
    client.set_api_token(token)
    recents = client.recents.get_recent_changes(params={"since_timestamp": since, "items": "user"})
    result = {
        "persons": every_page(client.persons.get_all_persons),
        "organizations": every_page(client.organizations.get_all_organizations),
        "deals": every_page(client.deals.get_all_deals),
        "activities": every_page(client.activities.get_all_activities),
        "notes": every_page(client.notes.get_all_notes),
        "leads": every_page(lambda params: client.leads.get_all_leads(params=params)),
        "users": client.users.get_all_users()["data"],
        "personFields": every_page(client.persons.get_person_fields),
        "organizationFields": every_page(client.organizations.get_organization_fields),
        "dealFields": every_page(client.deals.get_deal_fields),
        "activityFields": every_page(client.activities.get_activity_fields),
        "noteFields": every_page(client.notes.get_note_fields),
        "productFields": client.products.get_product_fields()["data"],
        # Pipedrive's quirk, as every client reads it: a user's `data` is a one-element list.
        "recent_users": [row["data"][0] for row in recents["data"] or [] if row["item"] == "user"],
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
