"""Salesforce write-back (API notes: sources/salesforce/README.md): sObject Collections, ≤ 200 records per call.

Records with a Salesforce Id (`external_id`) are updated with `PATCH /composite/sobjects`; records to
create are upserted by the external-id field `External_Id__c` (= the canonical record key) with
`PATCH /composite/sobjects/{SObject}/External_Id__c`, so a retried batch converges. `allOrNone` is false:
each record succeeds or fails alone, and the answer lists one result per record in request order with
Salesforce's `errors[{statusCode, message, fields}]`. A 401 refreshes the session once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus, urlencode

from canonry.errors import CanonryError, ErrorClass
from canonry.runtime import ConnectionRuntime
from canonry.writeback import WriteOutcome, WriteRecord
from sources.salesforce.helpers import classify
from sources.salesforce.settings import API_VERSION, SOBJECTS

BATCH_SIZE = 200
EXTERNAL_ID_FIELD = "External_Id__c"
LEAD_SOURCES = "enum:Web|Phone Inquiry|Partner Referral|Purchased List|Other"
# Writable fields per object (keyed like sources/salesforce/settings.SOBJECTS) and their type
# (canonry/reverse_etl/coerce.py); custom fields (`*__c`) are writable too. Picklists list their values.
FIELDS: dict[str, dict[str, str]] = {
    "contacts": {"FirstName": "text:40", "LastName": "text:80", "Email": "email", "Phone": "text:40",
                 "MobilePhone": "text:40", "Title": "text:128", "AccountId": "id", "OwnerId": "id",
                 "LeadSource": LEAD_SOURCES, "Canonry_Lead_Score__c": "number"},
    "accounts": {"Name": "text:255", "Website": "text:255", "Phone": "text:40", "NumberOfEmployees": "number",
                 "AnnualRevenue": "number", "OwnerId": "id", "Description": "text:32000",
                 "Type": "enum:Prospect|Customer - Direct|Customer - Channel|Partner|Other"},
    "opportunities": {"Name": "text:120", "Amount": "number", "CloseDate": "date", "AccountId": "id",
                      "OwnerId": "id", "Probability": "number", "NextStep": "text:255",
                      "StageName": "enum:Prospecting|Qualification|Needs Analysis|Value Proposition|"
                                   "Id. Decision Makers|Perception Analysis|Proposal/Price Quote|"
                                   "Negotiation/Review|Closed Won|Closed Lost",
                      "LeadSource": LEAD_SOURCES},
    "leads": {"FirstName": "text:40", "LastName": "text:80", "Company": "text:255", "Email": "email",
              "Title": "text:128", "OwnerId": "id", "LeadSource": LEAD_SOURCES,
              "Status": "enum:Open - Not Contacted|Working - Contacted|Closed - Converted|Closed - Not Converted"},
}
# Natural keys (match.by natural_key): Salesforce upserts only by an external-id field, so these are looked up
# with SOQL (`find`) and the record is then updated by Id, or created. Key name -> the sObject field.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {"contacts": ("email",), "leads": ("email",)}
NATURAL_KEY_FIELDS = {"email": "Email"}
LOOKS_UP_KEYS = True   # natural keys are found with `find` before writing (canonry/reverse_etl/matching.py)
# Salesforce answers 414 to a request URI over its limit; the lookups keep each query URL under this
# (URL-encoded, the instance and path included), far enough below the limit for any proxy in between.
MAX_QUERY_URL = 12_000


def is_custom_field(name: str) -> bool:
    return name.endswith("__c") and name != EXTERNAL_ID_FIELD


class SalesforceWriter:
    batch_size = BATCH_SIZE

    def __init__(self, runtime: ConnectionRuntime, object_name: str) -> None:
        if object_name not in SOBJECTS:
            raise ValueError(f"salesforce has no object {object_name!r}")
        self.runtime, self.sobject = runtime, SOBJECTS[object_name].name
        self.session = runtime.session(classifier=classify)
        instance = (runtime.credential.metadata().get("instance_url") or runtime.base_url).rstrip("/")
        self.api = f"{instance}/services/data/v{API_VERSION}"

    def _call(self, method: str, url: str, **kwargs) -> Any:
        try:
            return self.session.request(method, url, **kwargs)._canonry_json
        except CanonryError as exc:
            if exc.error_class != ErrorClass.AUTH_EXPIRED or not self.runtime.credential.refreshable:
                raise
            self.runtime.credential.refresh()
            self.runtime.credential_halt.clear()  # renewed: this connection's readers may send again
            return self.session.request(method, url, **kwargs)._canonry_json

    def write(self, records: list[WriteRecord]) -> list[WriteOutcome]:
        attributes = {"type": self.sobject}
        updates = [r for r in records if r.external_id]
        creates = [r for r in records if not r.external_id]
        outcomes: list[WriteOutcome] = []
        if updates:
            body = {"allOrNone": False, "records": [{"attributes": attributes, "Id": r.external_id, **r.fields}
                                                     for r in updates]}
            outcomes += self._outcomes(updates, self._call("PATCH", f"{self.api}/composite/sobjects", json=body))
        if creates:
            body = {"allOrNone": False, "records": [{"attributes": attributes, EXTERNAL_ID_FIELD: r.record_key,
                                                      **r.fields} for r in creates]}
            url = f"{self.api}/composite/sobjects/{self.sobject}/{EXTERNAL_ID_FIELD}"
            outcomes += self._outcomes(creates, self._call("PATCH", url, json=body))
        return outcomes

    def remove(self, records: list[WriteRecord], hard: bool = False) -> list[WriteOutcome]:
        """`DELETE /composite/sobjects?ids=` (≤ 200, allOrNone false): to the recycle bin, which is what
        Salesforce's API delete is; a record already deleted counts as removed."""
        known = [r for r in records if r.external_id]
        out = [WriteOutcome(r.record_key, False, None, "no Salesforce Id to delete") for r in records
               if not r.external_id]
        if known:
            results = self._call("DELETE", f"{self.api}/composite/sobjects",
                                 params={"ids": ",".join(r.external_id for r in known), "allOrNone": "false"})
            for outcome in self._outcomes(known, results):
                if not outcome.ok and "ENTITY_IS_DELETED" in (outcome.message or ""):
                    outcome.ok = True
                out.append(outcome)
        return out

    def _outcomes(self, records: list[WriteRecord], results: Any) -> list[WriteOutcome]:
        if not isinstance(results, list) or len(results) != len(records):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "sObject Collections answered a result count that "
                               "does not match the request", provider="salesforce",
                               connection_id=self.runtime.connection_id, endpoint="/composite/sobjects")
        out = []
        for record, result in zip(records, results, strict=True):
            if result.get("success"):
                out.append(WriteOutcome(record.record_key, True, result.get("id"),
                                        details={"created": result.get("created")}))
            else:
                message = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors", []))
                out.append(WriteOutcome(record.record_key, False, record.external_id, message[:500]))
        return out

    def read(self, records: list[WriteRecord]) -> dict[str, dict]:
        known = [r for r in records if r.external_id]
        if not known:
            return {}
        fields = sorted({k for r in known for k in r.fields})
        ids = ", ".join(f"'{r.external_id}'" for r in known if r.external_id.isalnum())
        soql = f"SELECT Id, {', '.join(fields)} FROM {self.sobject} WHERE Id IN ({ids})"
        body = self._call("GET", f"{self.api}/query", params={"q": soql})
        by_id = {row["Id"]: row for row in body.get("records", [])}
        return {r.record_key: by_id[r.external_id] for r in known if r.external_id in by_id}

    def find(self, key: str, values: list[str]) -> dict[str, list[str]]:
        """The Ids of the records whose natural key `key` equals each value (lower-cased value -> Ids, in
        Id order): `SELECT Id, Email FROM Contact WHERE Email IN (...)`, batched so each query URL stays
        under MAX_QUERY_URL; SOQL compares strings case-insensitively, as the keys are compared here."""
        field = NATURAL_KEY_FIELDS[key]
        found: dict[str, list[str]] = {}
        for soql in self._in_queries(field, sorted({v.lower() for v in values})):
            body = self._call("GET", f"{self.api}/query", params={"q": soql})
            while True:
                for row in body.get("records", []):
                    if row.get(field):
                        found.setdefault(str(row[field]).lower(), []).append(row["Id"])
                if body.get("done", True) or not body.get("nextRecordsUrl"):
                    break
                instance = self.api.split("/services/data/")[0]
                body = self._call("GET", instance + body["nextRecordsUrl"])
        return {value: sorted(ids) for value, ids in found.items()}

    def _in_queries(self, field: str, values: list[str]) -> list[str]:
        head = f"SELECT Id, {field} FROM {self.sobject} WHERE {field} IN ("
        # URL encoding is per character, so a query's encoded length is the sum of its parts' encoded lengths.
        fixed = len(f"{self.api}/query?") + len(urlencode({"q": head + ")"}))
        queries: list[str] = []
        literals: list[str] = []
        size = fixed
        for value in values:
            literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            cost = len(quote_plus(literal if not literals else ", " + literal))
            if literals and size + cost > MAX_QUERY_URL:
                queries.append(head + ", ".join(literals) + ")")
                literals, size, cost = [], fixed, len(quote_plus(literal))
            literals.append(literal)
            size += cost
        if literals:
            queries.append(head + ", ".join(literals) + ")")
        return queries


def writer(runtime: ConnectionRuntime, object_name: str) -> SalesforceWriter:
    return SalesforceWriter(runtime, object_name)
