"""The Workable SPI v3 sandbox (what it serves and its data model: `api.py`; API notes:
sources/workable/README.md)."""

from canonry.sandbox.workable.api import WorkableSimulator
from canonry.sandbox.workable.data import API_PREFIX, PAGE_MAX, STAGES, SUBDOMAIN, make_id, shortcode

# What `canonry.sandbox` finds by scanning its sub-packages: the simulator class, and the sandbox-only credential
# it accepts by default (it opens nothing but this local simulator).
SIMULATOR = WorkableSimulator
DEFAULT_TOKEN = "sandbox-workable-access-token"

__all__ = ["DEFAULT_TOKEN", "SIMULATOR", "API_PREFIX", "PAGE_MAX", "STAGES", "SUBDOMAIN", "WorkableSimulator", "make_id", "shortcode"]
