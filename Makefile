# The two commands: `make run` and `make test`. Everything else is set-up they share.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PG15_BIN ?= /usr/lib/postgresql/15/bin
# `make test` always uses the embedded clusters, never a DATABASE_URL from the shell.
TEST_ENV := env -u DATABASE_URL DJANGO_ENV=test

.PHONY: help venv browser-deps db run test lint check pytest pytest-pg15 bench db-stop db-status psql clean

help:
	@echo "make run    - the portal on http://127.0.0.1:$(PORT)/ (embedded PostgreSQL, demo data)"
	@echo "make test   - lint, checks and the whole suite (PostgreSQL 18, then 15 when present)"
	@echo "make bench  - benchmarks against the stock admin (see README)"
	@echo "make psql / db-status / db-stop - the embedded database"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

db: venv
	$(PY) -m portal.devdb start

run: db
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	$(PY) manage.py ensure_demo_admin
	@echo "Serving on http://127.0.0.1:$(PORT)/admin/ (Ctrl-C stops; the database keeps running: make db-stop)"
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

check: venv
	$(TEST_ENV) $(PY) manage.py check --fail-level WARNING
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

# The browser tests need Debian's chromium; install it when missing and we are root
# (CI is). Elsewhere, say how.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "== installing chromium (apt) for the browser tests =="; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; \
		fi; \
	fi

pytest: venv browser-deps
	$(TEST_ENV) $(PY) -m pytest

pytest-pg15: venv browser-deps
	@if [ -x "$(PG15_BIN)/postgres" ]; then \
		echo "== the same suite on PostgreSQL 15 ($(PG15_BIN)) =="; \
		$(TEST_ENV) PG_BIN=$(PG15_BIN) PORTAL_PGDATA=$(CURDIR)/.pgdata15 $(PY) -m pytest; \
	else \
		echo "== PostgreSQL 15 binaries not found at $(PG15_BIN): that tier is skipped =="; \
	fi

test: lint check pytest pytest-pg15

# Benchmarks, each on its own database of the embedded cluster (README "Benchmarks").
bench: venv
	$(PY) -m tests.bench.diagnostics

db-stop: venv
	$(PY) -m portal.devdb stop

db-status: venv
	$(PY) -m portal.devdb status

psql: venv
	$(PY) -m portal.devdb psql

clean: db-stop
	rm -rf .pgdata .pgdata15 staticfiles test-output

# --- deploy (issue 7) ---------------------------------------------------------------
# The image's own steps (Dockerfile ENV, collectstatic, CMD) under production settings
# against a dedicated embedded cluster; also part of `make test`.
.PHONY: smoke
smoke: venv
	$(VENV)/bin/hadolint Dockerfile
	$(TEST_ENV) $(PY) -m pytest tests/test_production_smoke.py
