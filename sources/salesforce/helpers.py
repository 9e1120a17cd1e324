"""Salesforce quirks: 403 REQUEST_LIMIT_EXCEEDED, sessions without expiry, SOQL literals, query batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import requests

from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.http_classify import default_classifier
from canonry.raw import changed_definitions_page, iso_timestamps, raw_page
from canonry.runtime import ConnectionRuntime

from .settings import API_VERSION, BATCH_SIZE, CURSOR_FIELD, CUSTOM_FIELD_KEYS, CUSTOM_FIELD_SOBJECTS, SObject


def classify(response: requests.Response) -> tuple[ErrorClass, str] | None:
    """Salesforce throttles with 403 REQUEST_LIMIT_EXCEEDED, not 429. The daily allocation ("TotalRequests
    Limit exceeded.") is a quota: stop at a checkpoint. Other limits (concurrent long requests) pass."""
    if response.status_code == 403:
        code, message = error_code(response)
        if code == "REQUEST_LIMIT_EXCEEDED":
            if "totalrequests" in message.lower().replace(" ", ""):
                return ErrorClass.QUOTA_EXHAUSTED, f"daily API requests spent: {message}"
            return ErrorClass.RATE_LIMITED, message
    if response.status_code == 401:
        code, message = error_code(response)
        return ErrorClass.AUTH_EXPIRED, f"{code}: {message}" if code else message
    return default_classifier(response)


def error_code(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", "")), str(body[0].get("message", ""))
    return "", str(body)[:200]


def session_for(runtime: ConnectionRuntime) -> ProviderSession:
    """Salesforce's session: its error bodies classified (the source's and the canary's)."""
    return runtime.session(classifier=classify)


def api_base(runtime: ConnectionRuntime) -> str:
    """The REST API root on the org's instance URL, which comes with the OAuth token (the login host otherwise)."""
    instance = runtime.credential.metadata().get("instance_url") or runtime.base_url
    return f"{instance.rstrip('/')}/services/data/v{API_VERSION}"


class SalesforceClient:
    """GETs against the org's instance URL; a 401 refreshes the session once and retries."""

    def __init__(self, runtime: ConnectionRuntime) -> None:
        self.runtime = runtime
        self.session = session_for(runtime)
        self.api = api_base(runtime)
        self.instance_url = self.api.split("/services/data/", 1)[0]

    def get(self, url: str, **kwargs) -> dict:
        full = url if url.startswith("http") else self.instance_url + url
        try:
            return self.session.get_json(full, **kwargs)
        except CanonryError as exc:
            if exc.error_class != ErrorClass.AUTH_EXPIRED or not self.runtime.credential.refreshable:
                raise
            self.runtime.credential.refresh()
            self.runtime.credential_halt.clear()  # renewed: this connection's readers may send again
            return self.session.get_json(full, **kwargs)

    def query_batches(self, soql: str, include_deleted: bool) -> Iterator[list[dict]]:
        """Every batch of a SOQL query (`queryAll` returns soft-deleted rows too), following nextRecordsUrl."""
        for records, _ in self.query_pages(soql, include_deleted):
            yield records

    def query_pages(self, soql: str, include_deleted: bool) -> Iterator[tuple[list[dict], bool]]:
        """Every batch of a SOQL query with whether more follow (`done` false and a nextRecordsUrl)."""
        headers = {"Sforce-Query-Options": f"batchSize={BATCH_SIZE}"}
        body = self.get(f"{self.api}/{'queryAll' if include_deleted else 'query'}", params={"q": soql},
                        headers=headers)
        while True:
            records = body.get("records") if isinstance(body, dict) else None
            if not isinstance(records, list):
                raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "query response has no `records` array",
                                   provider="salesforce", connection_id=self.runtime.connection_id,
                                   endpoint="/services/data/vXX.X/query")
            more = not body.get("done", True) and bool(body.get("nextRecordsUrl"))
            yield records, more
            if not more:
                return
            body = self.get(body["nextRecordsUrl"], headers=headers)


def soql_datetime(moment: datetime) -> str:
    """An unquoted SOQL datetime literal, second precision (the precision SOQL literals document)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_sf_datetime(value: str) -> datetime:
    value = value.replace("Z", "+00:00")
    if value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return datetime.fromisoformat(value).astimezone(UTC)


def build_soql(spec: SObject, fields: list[str], since: datetime | None) -> str:
    where = f" WHERE {CURSOR_FIELD} >= {soql_datetime(since)}" if since is not None else ""
    return f"SELECT {', '.join(fields)} FROM {spec.name}{where} ORDER BY {CURSOR_FIELD} ASC, Id ASC"


def page_table(records: list[dict], connection_id: str, extracted_at: datetime) -> pa.Table:
    return raw_page(records, connection_id=connection_id, remote_ids=[r["Id"] for r in records],
                    updated_at=iso_timestamps([r.get(CURSOR_FIELD) for r in records]),
                    is_deleted=[bool(r.get("IsDeleted")) for r in records], extracted_at=extracted_at)


def tombstone_table(object_name: str, deleted: list[tuple[str, str]], connection_id: str, extracted_at: datetime,
                    reason: str) -> pa.Table:
    """Rows for records known only as deleted (getDeleted ids, or gone from a key scan): the payload says so,
    and staging keeps the fields of the record's last full version."""
    records = [{"attributes": {"type": object_name}, "Id": rid, "IsDeleted": True, "deletedDate": when,
                "_canonry_tombstone": reason} for rid, when in deleted]
    return raw_page(records, connection_id=connection_id, remote_ids=[rid for rid, _ in deleted],
                    updated_at=iso_timestamps([when for _, when in deleted]), is_deleted=True,
                    extracted_at=extracted_at)


class CustomFieldCatalog:
    """The describe of each custom-field object, fetched once per run on first use and shared by the
    custom_fields resource and the object's own read (opt-in object `custom_fields`)."""

    def __init__(self, runtime: ConnectionRuntime) -> None:
        self.runtime = runtime
        self.lock = threading.Lock()
        self.described: dict[str, dict] = {}

    def covers(self, sobject: str) -> bool:
        return sobject in CUSTOM_FIELD_SOBJECTS

    def describe(self, sobject: str) -> dict:
        with self.lock:
            if sobject not in self.described:
                client = SalesforceClient(self.runtime)
                self.described[sobject] = client.get(f"{client.api}/sobjects/{sobject}/describe")
            return self.described[sobject]

    def custom_fields(self, sobject: str) -> list[dict]:
        return [f for f in self.describe(sobject).get("fields", []) if f.get("custom") and f["name"].endswith("__c")]


def custom_field_definitions_table(catalog: CustomFieldCatalog, sobject: str, known: dict[str, str],
                                   connection_id: str, extracted_at: datetime) -> tuple[pa.Table | None, dict]:
    """The object's custom field definitions that are new or changed (remote id `<Object>:<API name>`,
    `object` added to the payload)."""
    fields = [{**f, "object": sobject} for f in catalog.custom_fields(sobject)]
    return changed_definitions_page(fields, remote_ids=[f"{sobject}:{f['name']}" for f in fields],
                                    fingerprint_keys=CUSTOM_FIELD_KEYS, known=known, connection_id=connection_id,
                                    extracted_at=extracted_at)
