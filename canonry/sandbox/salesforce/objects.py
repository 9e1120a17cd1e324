"""Salesforce sandbox objects: field metadata (what describe returns), ids, and lazily generated records.

Fields per API notes: sources/salesforce/README.md Ids are 18 characters with the object's real key prefix
(001 Account, 003 Contact, 00Q Lead, 006 Opportunity, 005 User, 00T Task, 00U Event, 002 Note,
01J OpportunityStage) and the case-safe checksum suffix; the 9-character base-62 serial keeps ids of
one object in index order when sorted (ORDER BY Id is index order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from canonry.sandbox.datagen import JOB_TITLES, Faker
from canonry.sandbox.salesforce.soql import FieldInfo

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
POD = "5g0"
KEY_PREFIXES: dict[str, str] = {
    "Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006", "User": "005", "Task": "00T",
    "Event": "00U", "Note": "002", "OpportunityStage": "01J",
}
PREFIX_OBJECTS = {prefix: name for name, prefix in KEY_PREFIXES.items()}
ORG_ID = "00D5g000004Canon"
DEFAULT_CURRENCY = "USD"


def _checksum(fifteen: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    out = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(fifteen[chunk * 5:chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        out += alphabet[bits]
    return out


def make_id(object_name: str, index: int) -> str:
    serial, number = "", index + 1
    for _ in range(9):
        number, digit = divmod(number, 62)
        serial = BASE62[digit] + serial
    fifteen = KEY_PREFIXES[object_name] + POD + serial
    return fifteen + _checksum(fifteen)


def parse_id(object_name: str, remote_id: str) -> int | None:
    """Index of an 15- or 18-character id of this object, else None."""
    if len(remote_id) not in (15, 18) or not remote_id.startswith(KEY_PREFIXES[object_name] + POD):
        return None
    number = 0
    for char in remote_id[6:15]:
        digit = BASE62.find(char)
        if digit < 0:
            return None
        number = number * 62 + digit
    return number - 1


def object_of_id(remote_id: str | None) -> str | None:
    return PREFIX_OBJECTS.get(remote_id[:3]) if remote_id else None


def sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime: `2025-01-01T00:00:07.000+0000`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


# -- field metadata -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SfField:
    name: str
    type: str
    label: str | None = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    nillable: bool = True
    length: int = 0
    system: bool = False          # set by the platform, not createable/updateable
    required: bool = False        # createable and not nillable without a default
    picklist: tuple[str, ...] = ()

    def info(self) -> FieldInfo:
        return FieldInfo(self.name, self.type, self.reference_to, self.relationship_name)

    def describe(self) -> dict:
        soap = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "datetime": "xsd:dateTime",
                "date": "xsd:date", "int": "xsd:int", "double": "xsd:double", "currency": "xsd:double",
                "percent": "xsd:double"}.get(self.type, "xsd:string")
        return {
            "name": self.name, "label": self.label or _label(self.name), "type": self.type, "soapType": soap,
            "length": self.length, "byteLength": self.length * 3, "precision": 18 if self.type == "currency" else 0,
            "scale": 2 if self.type == "currency" else 0, "digits": 9 if self.type == "int" else 0,
            "referenceTo": list(self.reference_to), "relationshipName": self.relationship_name,
            "polymorphicForeignKey": len(self.reference_to) > 1, "externalId": self.external_id,
            "idLookup": self.name == "Id" or self.external_id or self.name in ("Email", "Username"),
            "filterable": self.type != "textarea", "sortable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "datetime", "double", "currency", "percent"),
            "nillable": self.nillable, "createable": not self.system, "updateable": not self.system,
            "defaultedOnCreate": self.system or self.name in ("OwnerId", "IsDeleted"),
            "calculated": self.name == "Name" and self.system, "custom": self.name.endswith("__c"),
            "unique": self.name == "Id" or self.external_id,
            "caseSensitive": False, "nameField": self.name in ("Name", "Subject", "Title", "MasterLabel"),
            "picklistValues": [{"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                               for v in self.picklist],
            "restrictedPicklist": False, "autoNumber": False, "encrypted": False, "deprecatedAndHidden": False,
            "inlineHelpText": None,
        }


def _label(name: str) -> str:
    out = name.replace("__c", "").replace("_", " ")
    if out.endswith("Id") and len(out) > 2:
        out = out[:-2] + " ID"
    return out


def _s(name: str, length: int = 255, **kw) -> SfField:
    return SfField(name, "string", length=length, **kw)


def _ref(name: str, to: tuple[str, ...], rel: str, **kw) -> SfField:
    return SfField(name, "reference", reference_to=to, relationship_name=rel, length=18, **kw)


def _common(owner: bool = True) -> list[SfField]:
    fields = [
        SfField("Id", "id", nillable=False, length=18, system=True),
        SfField("IsDeleted", "boolean", nillable=False, system=True),
        SfField("CreatedDate", "datetime", nillable=False, system=True),
        _ref("CreatedById", ("User",), "CreatedBy", nillable=False, system=True),
        SfField("LastModifiedDate", "datetime", nillable=False, system=True),
        _ref("LastModifiedById", ("User",), "LastModifiedBy", nillable=False, system=True),
        SfField("SystemModstamp", "datetime", nillable=False, system=True),
    ]
    if owner:
        fields.append(_ref("OwnerId", ("User",), "Owner", nillable=False))
    return fields


def _address(prefix: str) -> list[SfField]:
    return [SfField(f"{prefix}Street", "textarea", length=255), _s(f"{prefix}City", 40), _s(f"{prefix}State", 80),
            _s(f"{prefix}PostalCode", 20), _s(f"{prefix}Country", 80)]


STAGES = (  # ApiName, SortOrder, DefaultProbability, IsClosed, IsWon, ForecastCategoryName
    ("Prospecting", 1, 10, False, False, "Pipeline"),
    ("Qualification", 2, 10, False, False, "Pipeline"),
    ("Needs Analysis", 3, 20, False, False, "Pipeline"),
    ("Value Proposition", 4, 50, False, False, "Pipeline"),
    ("Id. Decision Makers", 5, 60, False, False, "Pipeline"),
    ("Perception Analysis", 6, 70, False, False, "Pipeline"),
    ("Proposal/Price Quote", 7, 75, False, False, "Pipeline"),
    ("Negotiation/Review", 8, 90, False, False, "Pipeline"),
    ("Closed Won", 9, 100, True, True, "Closed"),
    ("Closed Lost", 10, 0, True, False, "Omitted"),
)
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_SUBTYPES = ("Task", "Email", "Call")
CURRENCIES = ("USD", "EUR", "GBP")
ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")
SF_INDUSTRIES = ("Technology", "Healthcare", "Banking", "Retail", "Education", "Manufacturing", "Media",
                 "Telecommunications")
EXTERNAL_ID = "External_Id__c"
LEAD_SCORE = "Canonry_Lead_Score__c"

FIELDS: dict[str, list[SfField]] = {
    "Account": [*_common(), SfField("Name", "string", length=255, nillable=False, required=True),
                SfField("Type", "picklist", length=255, picklist=ACCOUNT_TYPES),
                SfField("Industry", "picklist", length=255, picklist=SF_INDUSTRIES),
                SfField("Website", "url", length=255), SfField("Phone", "phone", length=40),
                SfField("NumberOfEmployees", "int"), SfField("AnnualRevenue", "currency"),
                SfField("Description", "textarea", length=32000),
                _ref("ParentId", ("Account",), "Parent"), *_address("Billing"), *_address("Shipping"),
                SfField("CurrencyIsoCode", "picklist", length=3, picklist=CURRENCIES),
                SfField("LastActivityDate", "date", system=True), _s(EXTERNAL_ID, 80, external_id=True)],
    "Contact": [*_common(), _s("FirstName", 40), SfField("LastName", "string", length=80, nillable=False,
                                                        required=True),
                SfField("Name", "string", length=121, nillable=False, system=True),
                SfField("Email", "email", length=80), SfField("Phone", "phone", length=40),
                SfField("MobilePhone", "phone", length=40), _s("Title", 128),
                _ref("AccountId", ("Account",), "Account"), *_address("Mailing"),
                SfField("LeadSource", "picklist", length=255, picklist=LEAD_SOURCES),
                SfField("LastActivityDate", "date", system=True), _s(EXTERNAL_ID, 80, external_id=True),
                # A custom field the org added for reverse ETL (canonry's lead score; empty until pushed).
                SfField(LEAD_SCORE, "double")],
    "Lead": [*_common(), _s("FirstName", 40), SfField("LastName", "string", length=80, nillable=False,
                                                     required=True),
             SfField("Name", "string", length=121, nillable=False, system=True),
             SfField("Company", "string", length=255, nillable=False, required=True), _s("Title", 128),
             SfField("Email", "email", length=80), SfField("Phone", "phone", length=40),
             SfField("Status", "picklist", length=255, nillable=False, picklist=LEAD_STATUSES),
             SfField("LeadSource", "picklist", length=255, picklist=LEAD_SOURCES),
             SfField("IsConverted", "boolean", nillable=False), SfField("ConvertedDate", "date"),
             _ref("ConvertedAccountId", ("Account",), "ConvertedAccount"),
             _ref("ConvertedContactId", ("Contact",), "ConvertedContact"),
             _ref("ConvertedOpportunityId", ("Opportunity",), "ConvertedOpportunity"),
             SfField("Street", "textarea", length=255), _s("City", 40), _s("State", 80), _s("PostalCode", 20),
             _s("Country", 80), _s(EXTERNAL_ID, 80, external_id=True)],
    "Opportunity": [*_common(), SfField("Name", "string", length=120, nillable=False, required=True),
                    _ref("AccountId", ("Account",), "Account"), _ref("ContactId", ("Contact",), "Contact"),
                    SfField("Amount", "currency"), SfField("CurrencyIsoCode", "picklist", length=3,
                                                           picklist=CURRENCIES),
                    SfField("CloseDate", "date", nillable=False, required=True),
                    SfField("StageName", "picklist", length=255, nillable=False, required=True,
                            picklist=tuple(s[0] for s in STAGES)),
                    SfField("Probability", "percent"), SfField("IsClosed", "boolean", nillable=False, system=True),
                    SfField("IsWon", "boolean", nillable=False, system=True),
                    SfField("ForecastCategoryName", "picklist", length=255),
                    SfField("Type", "picklist", length=255, picklist=("New Business", "Existing Business")),
                    SfField("LeadSource", "picklist", length=255, picklist=LEAD_SOURCES),
                    _s("NextStep", 255), SfField("Description", "textarea", length=32000),
                    SfField("LastActivityDate", "date", system=True), _s(EXTERNAL_ID, 80, external_id=True)],
    "OpportunityStage": [*_common(owner=False), _s("ApiName", 255, system=True),
                         _s("MasterLabel", 255, nillable=False, system=True),
                         SfField("IsActive", "boolean", nillable=False, system=True),
                         SfField("IsClosed", "boolean", nillable=False, system=True),
                         SfField("IsWon", "boolean", nillable=False, system=True),
                         SfField("SortOrder", "int", system=True), SfField("DefaultProbability", "percent", system=True),
                         SfField("ForecastCategoryName", "picklist", length=255, system=True),
                         SfField("Description", "string", length=255, system=True)],
    "User": [*_common(owner=False), SfField("Username", "string", length=80, nillable=False, required=True),
             SfField("Name", "string", length=121, nillable=False, system=True), _s("FirstName", 40),
             SfField("LastName", "string", length=80, nillable=False, required=True),
             SfField("Email", "email", length=128, nillable=False, required=True), _s("Title", 80),
             SfField("IsActive", "boolean", nillable=False), _s("UserRoleId", 18), _s("ProfileId", 18)],
    "Task": [*_common(), _s("Subject", 255), SfField("Status", "picklist", length=255, nillable=False,
                                                    picklist=TASK_STATUSES),
             SfField("Priority", "picklist", length=40, nillable=False, picklist=("High", "Normal", "Low")),
             SfField("ActivityDate", "date"), _ref("WhoId", ("Contact", "Lead"), "Who"),
             _ref("WhatId", ("Account", "Opportunity"), "What"),
             _ref("AccountId", ("Account",), "Account", system=True),
             SfField("IsClosed", "boolean", nillable=False, system=True),
             SfField("Description", "textarea", length=32000),
             SfField("TaskSubtype", "picklist", length=40, picklist=TASK_SUBTYPES),
             SfField("CallType", "picklist", length=40, picklist=("Inbound", "Outbound", "Internal")),
             SfField("CompletedDateTime", "datetime", system=True)],
    "Event": [*_common(), _s("Subject", 255), SfField("StartDateTime", "datetime"),
              SfField("EndDateTime", "datetime"), SfField("ActivityDateTime", "datetime"),
              SfField("DurationInMinutes", "int"), _ref("WhoId", ("Contact", "Lead"), "Who"),
              _ref("WhatId", ("Account", "Opportunity"), "What"),
              _ref("AccountId", ("Account",), "Account", system=True), _s("Location", 255),
              SfField("Description", "textarea", length=32000)],
    "Note": [*_common(), SfField("Title", "string", length=80, nillable=False, required=True),
             SfField("Body", "textarea", length=32000),
             _ref("ParentId", ("Account", "Contact", "Opportunity"), "Parent", nillable=False, required=True),
             SfField("IsPrivate", "boolean", nillable=False)],
}
LABELS = {"Account": ("Account", "Accounts"), "Contact": ("Contact", "Contacts"), "Lead": ("Lead", "Leads"),
          "Opportunity": ("Opportunity", "Opportunities"), "User": ("User", "Users"), "Task": ("Task", "Tasks"),
          "Event": ("Event", "Events"), "Note": ("Note", "Notes"),
          "OpportunityStage": ("Opportunity Stage", "Opportunity Stages")}
COMPUTED_NAME = {"Contact", "Lead", "User"}          # Name = FirstName + ' ' + LastName
ACTIVITY = {"Task", "Event"}                         # AccountId derived from WhatId/WhoId


def field_map(object_name: str) -> dict[str, SfField]:
    return {f.name: f for f in FIELDS[object_name]}


def child_relationships(object_name: str) -> list[dict]:
    out = []
    for child, fields in FIELDS.items():
        for f in fields:
            if object_name in f.reference_to and f.relationship_name and not f.system:
                plural = LABELS[child][1].replace(" ", "")
                out.append({"childSObject": child, "field": f.name, "relationshipName": plural,
                            "cascadeDelete": child in ("Task", "Event", "Note") or f.name == "AccountId",
                            "deprecatedAndHidden": False, "restrictedDelete": False, "junctionIdListNames": [],
                            "junctionReferenceTo": []})
    return out


# -- data generation ------------------------------------------------------------------------------------
class Generator:
    """Record i of each object as a pure function of (seed, i); only non-system fields are stored."""

    def __init__(self, seed: int, scale: int) -> None:
        self.scale = max(1, scale)
        self.users = max(5, min(200, scale // 20))
        self.fake = {name: Faker(seed, f"salesforce.{name}") for name in FIELDS}

    def sizes(self) -> dict[str, int]:
        return {"Account": self.scale, "Contact": self.scale, "Lead": self.scale, "Opportunity": self.scale,
                "User": self.users, "Task": self.scale, "Event": self.scale, "Note": self.scale,
                "OpportunityStage": len(STAGES)}

    def factory(self, object_name: str) -> Callable[[int], dict]:
        return getattr(self, "_" + object_name.lower())

    def _owner(self, fake: Faker, index: int) -> str:
        return make_id("User", fake.number(index, "owner", self.users))

    def _ref(self, fake: Faker, index: int, key: str, target: str) -> str:
        return make_id(target, fake.number(index, key, self.scale))

    def _address(self, fake: Faker, index: int, prefix: str) -> dict:
        city, state, country, postal = fake.city(index)
        return {f"{prefix}Street": fake.street(index), f"{prefix}City": city, f"{prefix}State": state,
                f"{prefix}PostalCode": postal, f"{prefix}Country": country}

    def _account(self, index: int) -> dict:
        fake = self.fake["Account"]
        name = fake.company(index)
        return {"Name": name, "Type": fake.pick(index, "type", ACCOUNT_TYPES),
                "Industry": fake.pick(index, "industry", SF_INDUSTRIES),
                "Website": "https://" + name.lower().replace(" ", "-") + ".example.com",
                "Phone": fake.phone(index), "NumberOfEmployees": fake.number(index, "employees", 5000) + 1,
                "AnnualRevenue": float(fake.number(index, "revenue", 90_000_000) + 100_000),
                "Description": fake.words(index, "desc", 4), "ParentId": None,
                **self._address(fake, index, "Billing"), **self._address(fake, index + 7, "Shipping"),
                "CurrencyIsoCode": fake.pick(index, "currency", CURRENCIES), "LastActivityDate": _day(fake, index),
                "OwnerId": self._owner(fake, index), EXTERNAL_ID: None}

    def _contact(self, index: int) -> dict:
        fake = self.fake["Contact"]
        first, last = fake.person(index)
        return {"FirstName": first, "LastName": last, "Email": fake.email(index, first, last),
                "Phone": fake.phone(index), "MobilePhone": fake.phone(index, "mobile"),
                "Title": fake.pick(index, "title", JOB_TITLES), "AccountId": self._ref(fake, index, "acct", "Account"),
                **self._address(fake, index, "Mailing"), "LeadSource": fake.pick(index, "src", LEAD_SOURCES),
                "LastActivityDate": _day(fake, index), "OwnerId": self._owner(fake, index), EXTERNAL_ID: None,
                LEAD_SCORE: None}

    def _lead(self, index: int) -> dict:
        fake = self.fake["Lead"]
        first, last = fake.person(index)
        city, state, country, postal = fake.city(index)
        status = fake.pick(index, "status", LEAD_STATUSES)
        converted = status == "Closed - Converted"
        return {"FirstName": first, "LastName": last, "Company": self.fake["Account"].company(index + 100_000),
                "Title": fake.pick(index, "title", JOB_TITLES), "Email": fake.email(index, first, last, "leads.example"),
                "Phone": fake.phone(index), "Status": status, "LeadSource": fake.pick(index, "src", LEAD_SOURCES),
                "IsConverted": converted, "ConvertedDate": _day(fake, index) if converted else None,
                "ConvertedAccountId": self._ref(fake, index, "cacct", "Account") if converted else None,
                "ConvertedContactId": self._ref(fake, index, "ccontact", "Contact") if converted else None,
                "ConvertedOpportunityId": None, "Street": fake.street(index), "City": city, "State": state,
                "PostalCode": postal, "Country": country, "OwnerId": self._owner(fake, index), EXTERNAL_ID: None}

    def _opportunity(self, index: int) -> dict:
        fake = self.fake["Opportunity"]
        stage = fake.pick(index, "stage", STAGES)
        return {"Name": f"{fake.words(index, 'name', 2).title()} deal {index}",
                "AccountId": self._ref(fake, index, "acct", "Account"),
                "ContactId": self._ref(fake, index, "contact", "Contact"),
                "Amount": fake.number(index, "amount", 500_000) + 1000 + fake.number(index, "cents", 100) / 100,
                "CurrencyIsoCode": fake.pick(index, "currency", CURRENCIES),
                "CloseDate": f"2025-{fake.number(index, 'month', 12) + 1:02d}-{fake.number(index, 'day', 28) + 1:02d}",
                "StageName": stage[0], "Probability": float(stage[2]), "ForecastCategoryName": stage[5],
                "Type": fake.pick(index, "type", ("New Business", "Existing Business")),
                "LeadSource": fake.pick(index, "src", LEAD_SOURCES), "NextStep": fake.words(index, "next", 2),
                "Description": fake.words(index, "desc", 5), "LastActivityDate": _day(fake, index),
                "OwnerId": self._owner(fake, index), EXTERNAL_ID: None}

    def _opportunitystage(self, index: int) -> dict:
        name, order, probability, closed, won, forecast = STAGES[index]
        return {"ApiName": name, "MasterLabel": name, "IsActive": True, "IsClosed": closed, "IsWon": won,
                "SortOrder": order, "DefaultProbability": float(probability), "ForecastCategoryName": forecast,
                "Description": None}

    def _user(self, index: int) -> dict:
        fake = self.fake["User"]
        first, last = fake.person(index)
        email = fake.email(index, first, last, "sales.example.com")
        return {"Username": email + ".canonry", "FirstName": first, "LastName": last, "Email": email,
                "Title": fake.pick(index, "title", JOB_TITLES), "IsActive": not fake.chance(index, "inactive", 10),
                "UserRoleId": None, "ProfileId": "00e5g000000Prof"}

    def _activity_links(self, fake: Faker, index: int) -> dict:
        who = self._ref(fake, index, "who", "Contact")
        what_kind = "Opportunity" if fake.chance(index, "what_kind", 40) else "Account"
        return {"WhoId": who, "WhatId": self._ref(fake, index, "what", what_kind)}

    def _task(self, index: int) -> dict:
        fake = self.fake["Task"]
        subtype = fake.pick(index, "subtype", TASK_SUBTYPES)
        status = fake.pick(index, "status", TASK_STATUSES)
        return {"Subject": {"Call": "Call", "Email": "Email"}.get(subtype, "Follow up") + f" {index}",
                "Status": status, "Priority": fake.pick(index, "priority", ("High", "Normal", "Low")),
                "ActivityDate": _day(fake, index), **self._activity_links(fake, index),
                "Description": fake.words(index, "desc", 4), "TaskSubtype": subtype,
                "CallType": fake.pick(index, "calltype", ("Inbound", "Outbound")) if subtype == "Call" else None,
                "OwnerId": self._owner(fake, index)}

    def _event(self, index: int) -> dict:
        fake = self.fake["Event"]
        start = datetime(2025, 1, 1, 9, tzinfo=UTC) + timedelta(days=fake.number(index, "day", 365),
                                                                 minutes=30 * fake.number(index, "slot", 16))
        duration = 30 * (fake.number(index, "len", 4) + 1)
        return {"Subject": f"Meeting {index}: {fake.words(index, 'subj', 2)}", "StartDateTime": sf_datetime(start),
                "EndDateTime": sf_datetime(start + timedelta(minutes=duration)),
                "ActivityDateTime": sf_datetime(start), "DurationInMinutes": duration,
                **self._activity_links(fake, index), "Location": fake.city(index)[0],
                "Description": fake.words(index, "desc", 4), "OwnerId": self._owner(fake, index)}

    def _note(self, index: int) -> dict:
        fake = self.fake["Note"]
        parent_kind = fake.pick(index, "parent_kind", ("Account", "Contact", "Opportunity"))
        return {"Title": f"Note {index}", "Body": fake.words(index, "body", 6),
                "ParentId": self._ref(fake, index, "parent", parent_kind), "IsPrivate": False,
                "OwnerId": self._owner(fake, index)}


def _day(fake: Faker, index: int) -> str:
    return (date(2025, 1, 1) + timedelta(days=fake.number(index, "activity", 365))).isoformat()

