"""The Pipedrive sandbox (what it serves: `api.py`; API notes: sources/pipedrive/README.md)."""

from canonry.sandbox.pipedrive.api import PipedriveSimulator
from canonry.sandbox.pipedrive.data import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    DEFAULT_WEBHOOK_PASSWORD,
    DEFAULT_WEBHOOK_USER,
    V1_LISTS,
    V2_OBJECTS,
)

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI", "DEFAULT_WEBHOOK_PASSWORD",
           "DEFAULT_WEBHOOK_USER", "V1_LISTS", "V2_OBJECTS", "PipedriveSimulator"]
