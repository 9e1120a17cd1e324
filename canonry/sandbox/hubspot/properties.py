"""HubSpot custom properties for the HubSpot simulator: definitions served with the HubSpot-defined ones on
`GET /crm/v3/properties/{objectType}` (custom ones carry `hubspotDefined: false`), relabelled by
`PATCH /crm/v3/properties/{objectType}/{propertyName}`, and values on contacts, companies and deals when
the simulator runs with `custom_properties=True` (their own random stream: enabling them moves no other
generated value).

A custom property's internal `name` is its stable key (HubSpot never changes it); its `label` can be
renamed. The kinds are HubSpot's: `string`/`text`, `number`, `date`, `enumeration`/`select` (one option
`value`), `enumeration`/`checkbox` (several option values joined by `;`), a currency (`number` with
`showCurrencySymbol`), and an owner reference (`enumeration` with `referencedObjectType: OWNER`, the value an
owner id). Every value is a string, as HubSpot sends property values.
"""

from __future__ import annotations

from datetime import datetime

from canonry.sandbox.datagen import Faker

# object -> (name, label, kind, options); kind in text, number, date, select, checkbox, currency, owner
CUSTOM_PROPERTIES: dict[str, tuple[tuple[str, str, str, tuple[str, ...]], ...]] = {
    "contacts": (("preferred_language", "Preferred language", "text", ()),
                 ("lead_score_manual", "Manual lead score", "number", ()),
                 ("birthday", "Birthday", "date", ()),
                 ("segment", "Segment", "select", ("SMB", "Mid-market", "Enterprise")),
                 ("interests", "Interests", "checkbox", ("Product", "Pricing", "Support", "Partnerships")),
                 ("lifetime_value", "Lifetime value", "currency", ()),
                 ("account_manager", "Account manager", "owner", ())),
    "companies": (("tax_number", "Tax number", "text", ()),
                  ("annual_revenue_estimate", "Annual revenue estimate", "number", ()),
                  ("customer_since", "Customer since", "date", ()),
                  ("tier", "Tier", "select", ("Bronze", "Silver", "Gold")),
                  ("regions", "Regions", "checkbox", ("EMEA", "AMER", "APAC")),
                  ("contract_value", "Contract value", "currency", ()),
                  ("success_manager", "Success manager", "owner", ())),
    "deals": (("campaign_code", "Campaign code", "text", ()),
              ("seats", "Seats", "number", ()),
              ("renewal_date", "Renewal date", "date", ()),
              ("deal_source", "Deal source", "select", ("Inbound", "Outbound", "Partner", "Event")),
              ("products_of_interest", "Products of interest", "checkbox", ("Core", "Analytics", "Integrations")),
              ("discount", "Discount", "currency", ()),
              ("solution_engineer", "Solution engineer", "owner", ())),
}
# kind -> (HubSpot type, fieldType)
KINDS = {"text": ("string", "text"), "number": ("number", "number"), "date": ("date", "date"),
         "select": ("enumeration", "select"), "checkbox": ("enumeration", "checkbox"),
         "currency": ("number", "number"), "owner": ("enumeration", "select")}
CREATED = "2024-03-01T09:00:00.000Z"


def option_value(label: str) -> str:
    return label.lower().replace("-", "_").replace(" ", "_")


class CustomProperties:
    """Definitions (mutable: labels can be renamed) and generated values of custom properties."""

    def __init__(self, seed: int, first_owner_id: int, owner_count: int) -> None:
        self.first_owner_id, self.owner_count = first_owner_id, owner_count
        self.faker = {name: Faker(seed, f"hubspot.custom.{name}") for name in CUSTOM_PROPERTIES}
        self.definitions: dict[str, list[dict]] = {
            name: [self._definition(name, n, *spec) for n, spec in enumerate(specs)]
            for name, specs in CUSTOM_PROPERTIES.items()}
        self.kinds = {(name, spec[0]): spec[2] for name, specs in CUSTOM_PROPERTIES.items() for spec in specs}

    @staticmethod
    def _definition(object_name: str, position: int, name: str, label: str, kind: str,
                    options: tuple[str, ...]) -> dict:
        kind_type, field_type = KINDS[kind]
        body = {"name": name, "label": label, "type": kind_type, "fieldType": field_type,
                "groupName": f"{object_name[:-1]}information", "description": "", "displayOrder": position,
                "options": [{"label": o, "value": option_value(o), "displayOrder": n, "hidden": False}
                            for n, o in enumerate(options)],
                "calculated": False, "externalOptions": kind == "owner", "hasUniqueValue": False, "hidden": False,
                "formField": True, "hubspotDefined": False, "createdAt": CREATED, "updatedAt": CREATED,
                "archived": False}
        if kind == "currency":
            body["showCurrencySymbol"] = True
        if kind == "owner":
            body["referencedObjectType"] = "OWNER"
        return body

    def relabel(self, object_name: str, name: str, label: str, now: datetime) -> dict | None:
        for definition in self.definitions.get(object_name, []):
            if definition["name"] == name:
                definition["label"] = label
                definition["updatedAt"] = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                return definition
        return None

    def values(self, object_name: str, index: int) -> dict[str, str | None]:
        """Record `index`'s custom property values (strings); about a fifth empty (null)."""
        fake = self.faker[object_name]
        out: dict[str, str | None] = {}
        for definition in self.definitions[object_name]:
            name = definition["name"]
            kind = self.kinds[(object_name, name)]
            options = [o["value"] for o in definition["options"]]
            if fake.chance(index, name + "?", 20):
                out[name] = None
            elif kind == "text":
                out[name] = fake.words(index, name, 2).title()
            elif kind in ("number", "currency"):
                out[name] = str(fake.number(index, name, 100_000) / 100)
            elif kind == "date":
                out[name] = f"202{fake.number(index, name + 'y', 6)}-{fake.number(index, name + 'm', 12) + 1:02d}-" \
                            f"{fake.number(index, name + 'd', 28) + 1:02d}"
            elif kind == "select":
                out[name] = fake.pick(index, name, tuple(options))
            elif kind == "checkbox":
                out[name] = ";".join(o for n, o in enumerate(options) if fake.chance(index, f"{name}{n}", 40)) \
                    or options[0]
            elif kind == "owner":
                out[name] = str(self.first_owner_id + fake.number(index, name, self.owner_count))
        return out
