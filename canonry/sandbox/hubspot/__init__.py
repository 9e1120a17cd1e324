"""The HubSpot CRM v3 sandbox (what it serves: `api.py`; writes: `writes.py`; API notes:
sources/hubspot/README.md)."""

from canonry.sandbox.hubspot.api import HubSpotSimulator
from canonry.sandbox.hubspot.data import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    OBJECT_TYPES,
)

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI", "OBJECT_TYPES", "HubSpotSimulator"]
