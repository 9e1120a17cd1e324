"""The read API: canonical tables over HTTP (`canonry api serve`), per-tenant keys, OpenAPI from the contract.

resources.py  the resources and their JSON Schemas, derived from canonry/canonical.py
openapi.py    the OpenAPI 3.1 document (docs/openapi.json is this, committed; a test keeps it current)
store.py      the query layer: one short-lived read-only connection per request, tenant filter, keyset pages
keys.py       API keys: issued per tenant, stored hashed in the data dir, revocable
app.py        the Starlette application: auth, scopes, rate limits, error bodies
events.py     /v1/events/subscribers: the tenant's subscribers of outbound change events (canonry/events)
"""
