"""dlt sources, one folder per provider: `__init__.py` wiring, `settings.py` data (its `SPEC`), `helpers.py`
quirks. The folders are the list of providers: `canonry.providers` finds them by scanning this package."""
