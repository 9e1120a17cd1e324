"""The Greenhouse Harvest v3 sandbox (what it serves: `api.py`; API notes: sources/greenhouse/README.md)."""

from canonry.sandbox.greenhouse.api import GreenhouseSimulator
from canonry.sandbox.greenhouse.data import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_WEBHOOK_SECRET,
    OFFSETS,
    PER_PAGE_MAX,
    RESOURCES,
    sign,
    webhook_body,
)

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_WEBHOOK_SECRET", "OFFSETS", "PER_PAGE_MAX",
           "RESOURCES", "GreenhouseSimulator", "sign", "webhook_body"]
