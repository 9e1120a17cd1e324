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

__all__ = ["AUDIENCE", "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REDIRECT_URI",
           "DEFAULT_SIGNATURE_TOKEN", "LeverSimulator", "signature", "uid"]
