"""The OpenAPI 3.1 document of the read API, generated from the resources (themselves the contract).

`canonry api openapi --write` refreshes docs/openapi.json; tests/api/test_openapi.py fails when it is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from canonry.api.resources import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_PORT,
    EVENTS_PATH,
    EVENTS_SCOPE,
    MAX_PAGE_SIZE,
    RESOURCES,
    SCOPES,
    Resource,
)
from canonry.warehouse import PROJECT_ROOT

DOCUMENT_PATH = PROJECT_ROOT / "docs" / "openapi.json"

# Error responses every operation can give, and what they mean.
ERRORS: dict[str, str] = {
    "400": "A parameter is invalid (the body names it and says what is accepted).",
    "401": "No API key, an unknown one or a revoked one.",
    "403": "The key lacks the scope of this resource family (ats:read / crm:read) or events:manage.",
    "404": "No such record (or subscriber) for this key's tenant (another tenant's id included).",
    "422": "The subscriber cannot be added as given (URL, event patterns, retry policy): the body says why.",
    "429": "The key's rate limit is spent; retry after `Retry-After` seconds.",
    "503": "The warehouse is busy (a load holds it); retry after `Retry-After` seconds.",
}
RATE_LIMIT_HEADERS: dict[str, str] = {
    "RateLimit-Limit": "Requests allowed per window for this key.",
    "RateLimit-Remaining": "Requests left in the current window.",
    "RateLimit-Reset": "Seconds until the window resets.",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message"], "additionalProperties": False,
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"},
                       "parameter": {"type": "string"}},
    }},
}


def _error_responses(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/Error{code}"} for code in codes}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    headers = {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_HEADERS}
    return {"description": description, "headers": headers, "content": {"application/json": {"schema": schema}}}


def _fields_parameter(resource: Resource) -> dict[str, Any]:
    return {"name": "fields", "in": "query", "required": False, "style": "form", "explode": False,
            "description": "Comma-separated fields to return (the id always comes back).",
            "schema": {"type": "array", "items": {"type": "string", "enum": list(resource.columns)},
                       "uniqueItems": True}}


LIST_PARAMETERS: dict[str, dict[str, Any]] = {
    "cursor": {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
               "description": "The `next` value of the previous page (opaque)."},
    "limit": {"name": "limit", "in": "query", "required": False,
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}},
    "modified_after": {"name": "modified_after", "in": "query", "required": False,
                       "schema": {"type": "string", "format": "date-time"},
                       "description": "Only records Canonry received after this time (`last_synced_at`)."},
    "include_deleted": {"name": "include_deleted", "in": "query", "required": False,
                        "schema": {"type": "boolean", "default": False},
                        "description": "Also return records deleted at the provider (`is_deleted` true)."},
}


def _list_operation(resource: Resource) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{resource.schema_name}"}
    return {
        "operationId": f"list_{resource.table}",
        "summary": f"List {resource.family.upper()} {resource.name.replace('_', ' ')} of the key's tenant",
        "tags": [resource.family],
        "security": [{"apiKey": [resource.scope]}],
        "parameters": [*({"$ref": f"#/components/parameters/{name}"} for name in LIST_PARAMETERS),
                       _fields_parameter(resource)],
        "responses": {
            "200": _ok("One page, in canonical id order.", {
                "type": "object", "required": ["results", "next"], "additionalProperties": False,
                "properties": {"results": {"type": "array", "items": ref},
                               "next": {"type": ["string", "null"],
                                        "description": "Cursor of the next page; null on the last page."}}}),
            **_error_responses("400", "401", "403", "429", "503"),
        },
    }


def _get_operation(resource: Resource) -> dict[str, Any]:
    with_remote = {"$ref": f"#/components/schemas/{resource.schema_name}Detail"}
    return {
        "operationId": f"get_{resource.table}",
        "summary": f"One {resource.family.upper()} {resource.id_column.removesuffix('_id').replace('_', ' ')} "
                   "by its canonical id",
        "tags": [resource.family],
        "security": [{"apiKey": [resource.scope]}],
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": f"The canonical `{resource.id_column}`."},
            {"name": "include_remote_data", "in": "query", "required": False,
             "schema": {"type": "boolean", "default": False},
             "description": "Add `remote_data`: the provider's payload as loaded into the raw layer."},
            _fields_parameter(resource),
        ],
        "responses": {
            "200": _ok("The record (deleted ones too).", with_remote),
            **_error_responses("400", "401", "403", "404", "429", "503"),
        },
    }


REMOTE_DATA: dict[str, Any] = {
    "type": "array", "items": {"$ref": "#/components/schemas/RemoteData"},
    "description": "With include_remote_data=true: the latest raw payload of the record in each raw table it is "
                   "built from (empty when it is built from part of a raw object, e.g. a deal stage)."}


_SUBSCRIBER_FIELDS: dict[str, Any] = {
    "url": {"type": "string", "description": "Where events are POSTed (https; http only on loopback)."},
    "events": {"type": "array", "items": {"type": "string"},
               "description": "Patterns of event types, e.g. crm.contact.* or ats.*.deleted (default [\"*\"])."},
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 50,
                     "description": "Attempts before a delivery is a dead letter (default 8)."},
    "backoff_seconds": {"type": "number", "minimum": 0.05, "maximum": 21600,
                        "description": "First retry delay; doubles each attempt (default 30)."},
    "label": {"type": "string"},
}
SUBSCRIBER: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["subscriber_id", "tenant", "url", "events", "max_attempts", "backoff_seconds", "created_at",
                 "allow_private_network", "label"],
    "properties": {"subscriber_id": {"type": "string"}, "tenant": {"type": "string"}, **_SUBSCRIBER_FIELDS,
                   "created_at": {"type": "string", "format": "date-time"},
                   "allow_private_network": {"type": "boolean"}}}


def _events_paths() -> dict[str, Any]:
    """The subscribers of outbound change events (docs/EVENTS.md), per tenant, scope events:manage."""
    common = {"tags": ["events"], "security": [{"apiKey": [EVENTS_SCOPE]}]}
    return {
        EVENTS_PATH: {
            "get": {**common, "operationId": "list_event_subscribers",
                    "summary": "Subscribers of the key's tenant (never their secrets)",
                    "responses": {"200": _ok("The subscribers.", {
                        "type": "object", "required": ["results"], "additionalProperties": False,
                        "properties": {"results": {"type": "array",
                                                   "items": {"$ref": "#/components/schemas/Subscriber"}}}}),
                        **_error_responses("401", "403", "429")}},
            "post": {**common, "operationId": "add_event_subscriber",
                     "summary": "Add a subscriber for the key's tenant; its signing secret is in this answer only",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["url"], "additionalProperties": False,
                         "properties": _SUBSCRIBER_FIELDS}}}},
                     "responses": {"201": _ok("The subscriber and its `secret` (whsec_…), shown once.", {
                         **SUBSCRIBER, "required": [*SUBSCRIBER["required"], "secret"],
                         "properties": {**SUBSCRIBER["properties"],
                                        "secret": {"type": "string", "pattern": "^whsec_"}}}),
                         **_error_responses("400", "401", "403", "422", "429")}},
        },
        f"{EVENTS_PATH}/{{id}}": {
            "delete": {**common, "operationId": "remove_event_subscriber",
                       "summary": "Remove a subscriber of the key's tenant (and its secret)",
                       "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                                       "description": "The subscriber_id."}],
                       "responses": {"204": {"description": "Removed."}, **_error_responses("401", "403", "404",
                                                                                             "429")}},
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, "RemoteData": {
        "type": "object", "required": ["source", "data"], "additionalProperties": False,
        "properties": {"source": {"type": "string", "description": "raw_<provider>.<table> it was read from"},
                       "data": {"description": "The provider's object, exactly as received."}}}}
    schemas["Subscriber"] = SUBSCRIBER
    for resource in RESOURCES:
        paths[resource.path] = {"get": _list_operation(resource)}
        paths[f"{resource.path}/{{id}}"] = {"get": _get_operation(resource)}
        schemas[resource.schema_name] = resource.record_schema()
        schemas[f"{resource.schema_name}Detail"] = resource.record_schema(remote_data=REMOTE_DATA)
    paths.update(_events_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "Canonry read API", "version": "1.0.0",
                 "description": "Canonical ATS and CRM records of one tenant, read-only, and the tenant's "
                                "subscribers of outbound change events. Generated from canonry/canonical.py; "
                                "see docs/API.md and docs/EVENTS.md."},
        "servers": [{"url": f"http://127.0.0.1:{DEFAULT_PORT}"}],
        "security": [{"apiKey": list(SCOPES)}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": LIST_PARAMETERS,
            "responses": {f"Error{code}": {"description": text, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}} for code, text in ERRORS.items()},
            "headers": {name: {"description": text, "schema": {"type": "integer"}}
                        for name, text in RATE_LIMIT_HEADERS.items()},
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "`Authorization: Bearer <key>` from "
                                                          "`canonry api keys create --tenant T`."}},
        },
    }


def rendered() -> str:
    """The document as committed: stable key order, trailing newline."""
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


def write(path: Path = DOCUMENT_PATH) -> Path:
    path.write_text(rendered())
    return path
