"""The Ashby API sandbox (what it serves: `api.py`; API notes: sources/ashby/README.md)."""

from canonry.sandbox.ashby.api import AshbySimulator
from canonry.sandbox.ashby.data import DEFAULT_WEBHOOK_SECRET, ENDPOINTS, PAGE_MAX, SPECS

# What `canonry.sandbox` finds by scanning its sub-packages: the simulator class, and the sandbox-only credential
# it accepts by default (it opens nothing but this local simulator).
SIMULATOR = AshbySimulator
DEFAULT_TOKEN = "sandbox-ashby-api-key"

__all__ = ["DEFAULT_TOKEN", "SIMULATOR", "DEFAULT_WEBHOOK_SECRET", "ENDPOINTS", "PAGE_MAX", "SPECS", "AshbySimulator"]
