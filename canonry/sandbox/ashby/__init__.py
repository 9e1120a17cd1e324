"""The Ashby API sandbox (what it serves: `api.py`; API notes: sources/ashby/README.md)."""

from canonry.sandbox.ashby.api import AshbySimulator
from canonry.sandbox.ashby.data import DEFAULT_WEBHOOK_SECRET, ENDPOINTS, PAGE_MAX, SPECS

__all__ = ["DEFAULT_WEBHOOK_SECRET", "ENDPOINTS", "PAGE_MAX", "SPECS", "AshbySimulator"]
