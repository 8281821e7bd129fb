# The two commands: `make setup`, then `make run`. `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
# the command line (cli/main.py): `.venv/bin/hcw --help` lists its commands
HCW := $(VENV)/bin/hcw

.PHONY: setup chromium postgresql run test test-fast bench docs report up down manifest lint format stop-warehouse clean

setup: chromium postgresql ## create .venv, install the locked dependencies, generate .env with fresh secrets, fetch the Data Docs' assets
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --compile-bytecode --python $(PY)
	$(HCW) setup-env
	$(HCW) data-docs-assets

# $(call debian_package,<package>,<check that it is there>,<why it is needed>): installed with
# apt-get when missing and root, else stop and say how
define debian_package
	@$(2) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's $(1) ($(3))"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  else \
	    echo "make setup: Debian's $(1) is missing ($(3)): run 'sudo apt-get install $(1)', then make setup again"; \
	    exit 1; \
	  fi; }
endef

chromium: ## Debian's chromium, which the browser tests drive: installed when missing and root, else how
	$(call debian_package,chromium,command -v chromium,the browser tests need it)

postgresql: ## Debian's PostgreSQL, whose TLS the transport test uses (the embedded one has none): installed when missing and root, else how
	$(call debian_package,postgresql,ls /usr/lib/postgresql/*/bin/postgres,the transport test starts a TLS server with it)

run: manifest ## start the warehouse, land demo data, run each source's DAG and the build through Airflow
	$(HCW) run

test: manifest ## the whole suite, in a random order (its seed printed), against copies of a template warehouse: two workers, a test file each at a time
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: manifest ## the inner loop: unit tests, DAG integrity, and the thin path (its dbt build runs dbt's unit tests)
	$(PY) -m pytest -n 2 --dist loadfile -m "(not e2e and not slow) or thin_path"

up: manifest ## start Airflow (api-server, scheduler, dag-processor, triggerer) on 127.0.0.1:8080
	$(HCW) up

down: ## stop everything `make up` started
	$(HCW) down

manifest: ## parse the dbt project again if it changed (the warehouse DAG renders from its manifest)
	$(HCW) manifest

bench: ## every benchmark at full size; each prints its figures as JSON on its last line
	@for benchmark in benchmarks/*.py; do echo "== $$benchmark"; $(PY) $$benchmark || exit 1; done

docs: ## generate dbt's docs site (lineage from raw sources to marts) and serve it on 127.0.0.1:8081
	$(HCW) docs

report: ## the data quality report and Great Expectations' Data Docs (static HTML under var/)
	$(HCW) report

lint: ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

stop-warehouse: ## stop the embedded PostgreSQL (its data stays in var/pgdata)
	$(HCW) stop-warehouse

clean: down stop-warehouse ## forget everything the product wrote: warehouse data, landing, Airflow home
	rm -rf var dbt_project/target dbt_project/logs
