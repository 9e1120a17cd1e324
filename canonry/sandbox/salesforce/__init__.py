"""The Salesforce REST API sandbox (what it serves: `api.py`; API notes: sources/salesforce/README.md)."""

from canonry.sandbox.salesforce.api import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    SalesforceSimulator,
)
from canonry.sandbox.salesforce.objects import make_id

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI", "SalesforceSimulator", "make_id"]
