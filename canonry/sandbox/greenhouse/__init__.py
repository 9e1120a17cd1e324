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

# What `canonry.sandbox` finds by scanning its sub-packages: the simulator class, and the sandbox-only credential
# it accepts by default (it opens nothing but this local simulator).
SIMULATOR = GreenhouseSimulator
# Greenhouse v3 uses client credentials: the stored secret is this JSON (auth.kind client_credentials).
DEFAULT_TOKEN = ('{"client_id": "canonry-greenhouse-client", "client_secret": "sandbox-greenhouse-client-secret", '
                 '"sub": "90000001"}')

__all__ = ["DEFAULT_TOKEN", "SIMULATOR", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_WEBHOOK_SECRET", "OFFSETS", "PER_PAGE_MAX",
           "RESOURCES", "GreenhouseSimulator", "sign", "webhook_body"]
