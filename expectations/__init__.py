"""Great Expectations gate over the canonical tables: suites as data (`suites.py`), runner (`gate.py`)."""
