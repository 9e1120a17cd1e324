"""The Workable SPI v3 sandbox (what it serves and its data model: `api.py`; API notes:
sources/workable/README.md)."""

from canonry.sandbox.workable.api import WorkableSimulator
from canonry.sandbox.workable.data import API_PREFIX, PAGE_MAX, STAGES, SUBDOMAIN, make_id, shortcode

__all__ = ["API_PREFIX", "PAGE_MAX", "STAGES", "SUBDOMAIN", "WorkableSimulator", "make_id", "shortcode"]
