# Vigil: `make run` serves the demo on an embedded default; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test test-pg lint check-types unit browser setup migrate demo chromium clean bench

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	mkdir -p var
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo --if-empty
	$(PY) manage.py load_training

run: demo
	@echo "Vigil on http://127.0.0.1:$(PORT)/  (the demo logins are listed above)"
	VIGIL_DEBUG=1 VIGIL_LOG_FORMAT=text $(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

# Debian's Chromium for the browser tests (Playwright never downloads its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check scanners dashboard vigil tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy scanners dashboard vigil

test: setup chromium lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup

# The suite against the machine's PostgreSQL and Redis, as CI runs it: the PostgreSQL paths (COPY, the single-statement
# insert, advisory locks) skip on SQLite, so a plain `make test` never executes the production SQL.
PG_URL ?= postgres://postgres@127.0.0.1:5432/vigil
REDIS_URL ?= redis://127.0.0.1:6379/0
test-pg: setup chromium lint
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) VIGIL_REQUIRE_SERVICES=1 $(VENV)/bin/pytest -n 2 --dist loadgroup

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
