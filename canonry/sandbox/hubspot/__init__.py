"""The HubSpot CRM v3 sandbox (what it serves: `api.py`; writes: `writes.py`; API notes:
sources/hubspot/README.md)."""

from canonry.sandbox.hubspot.api import HubSpotSimulator
from canonry.sandbox.hubspot.data import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    OBJECT_TYPES,
)

# What `canonry.sandbox` finds by scanning its sub-packages: the simulator class, and the sandbox-only credential
# it accepts by default (it opens nothing but this local simulator).
SIMULATOR = HubSpotSimulator
DEFAULT_TOKEN = "sandbox-hubspot-private-app-token"

__all__ = ["DEFAULT_TOKEN", "SIMULATOR", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI", "OBJECT_TYPES", "HubSpotSimulator"]
