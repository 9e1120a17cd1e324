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

# What `canonry.sandbox` finds by scanning its sub-packages: the simulator class, and the sandbox-only credential
# it accepts by default (it opens nothing but this local simulator).
SIMULATOR = PipedriveSimulator
DEFAULT_TOKEN = "sandbox-pipedrive-api-token"

__all__ = ["DEFAULT_TOKEN", "SIMULATOR", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI", "DEFAULT_WEBHOOK_PASSWORD",
           "DEFAULT_WEBHOOK_USER", "V1_LISTS", "V2_OBJECTS", "PipedriveSimulator"]
