"""dlt sources, one folder per provider: `__init__.py` wiring, `settings.py` data, `helpers.py` quirks."""

PROVIDERS: tuple[str, ...] = ("hubspot", "salesforce", "pipedrive", "greenhouse", "lever", "ashby")
