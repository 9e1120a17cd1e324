# The two commands of the README: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.canonry-installed
export RUNTIME__DLTHUB_TELEMETRY := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test lint ui bench bench-full clean install browser

install: $(STAMP)

# Re-install when the project's dependency list changes. The compiled sqlglot builds pulled in by
# dagster-dbt are removed last: they break our SOQL dialect (see docs/DEVELOPING.md).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev,postgres]'
	$(BIN)/python -m pip uninstall -y -q sqlglotc sqlglotrs || true
	$(BIN)/python -m pip check
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/canonry demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The health-page test drives Debian's Chromium through Playwright (never `playwright install`): installed
# here when missing (root: apt-get; otherwise sudo when it needs no password). Idempotent.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "chromium missing: run 'sudo apt-get install -y chromium' (the health-page test needs it)"; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .

ui: $(STAMP)
	$(BIN)/canonry ui $(if $(CONFIG),--config $(CONFIG))

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick
	$(BIN)/python -m benchmarks.api_read --rows 100000
	$(BIN)/python -m benchmarks.webhook_bench
	$(BIN)/python -m benchmarks.push_bench --size 10000

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks.run --full
	$(BIN)/python -m benchmarks.pg_bench --size 100000 --jobs-scale 2000

# Everything a run wrote: data/ except the shipped example connections file, dbt's own target and logs.
clean:
	find data -mindepth 1 -maxdepth 1 ! -name connections.example.yml -exec rm -rf {} +
	rm -rf dbt/target dbt/logs
