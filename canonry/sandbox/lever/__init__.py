"""The Lever Data API v1 sandbox (what it serves and its data model: `api.py`; API notes: sources/lever/README.md)."""

from canonry.sandbox.lever.api import LeverSimulator
from canonry.sandbox.lever.data import (
    AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    DEFAULT_SIGNATURE_TOKEN,
    signature,
    uid,
)

# What `canonry.sandbox` finds by scanning its sub-packages: the simulator class, and the sandbox-only credential
# it accepts by default (it opens nothing but this local simulator).
SIMULATOR = LeverSimulator
DEFAULT_TOKEN = "sandbox-lever-api-key"

__all__ = ["DEFAULT_TOKEN", "SIMULATOR", "AUDIENCE", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI",
           "DEFAULT_SIGNATURE_TOKEN", "LeverSimulator", "signature", "uid"]
