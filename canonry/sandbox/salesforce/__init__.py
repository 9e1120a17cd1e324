"""The Salesforce REST API sandbox (what it serves: `api.py`; API notes: sources/salesforce/README.md)."""

from canonry.sandbox.salesforce.api import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    SalesforceSimulator,
)
from canonry.sandbox.salesforce.objects import make_id

# What `canonry.sandbox` finds by scanning its sub-packages: the simulator class, and the sandbox-only credential
# it accepts by default (it opens nothing but this local simulator).
SIMULATOR = SalesforceSimulator
DEFAULT_TOKEN = "00D5g000004Canon!AQsandbox-salesforce-session-id"

__all__ = ["DEFAULT_TOKEN", "SIMULATOR", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI", "SalesforceSimulator", "make_id"]
