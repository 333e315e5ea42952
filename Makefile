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

.PHONY: help venv gettext-deps messages translations i18n-check browser-deps jdbc-deps pg15-deps typecheck db run test lint check migration-lint pytest pytest-pg15 bench db-stop db-status psql clean

help:
	@echo "make run    - the portal on http://127.0.0.1:$(PORT)/ (embedded PostgreSQL, demo data)"
	@echo "make test   - lint, types, checks and the whole suite (PostgreSQL 18, then 15)"
	@echo "make bench  - benchmarks against the stock admin (see docs/benchmarks.md)"
	@echo "make psql / db-status / db-stop - the embedded database"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

db: venv
	$(PY) -m devdb start

# Migrate as the migrator (the owner of every schema and table); everything after it,
# the server included, as the application role, as on Cloud Run.
run: db messages
	DATABASE_ROLE=migrator $(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	$(PY) manage.py ensure_demo_admin
	@echo "Serving on http://127.0.0.1:$(PORT)/admin/ (Ctrl-C stops; the database keeps running: make db-stop)"
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

# Static types: mypy with django-stubs over the whole tree (configuration in pyproject).
typecheck: venv
	$(TEST_ENV) $(VENV)/bin/mypy

check: venv
	$(TEST_ENV) $(PY) manage.py check --fail-level WARNING
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

# Every project migration: squawk (.squawk.toml) on its sqlmigrate SQL plus the
# Django-level rules of portal/db/lint.py; exemptions are LINT_EXEMPT in the migration.
migration-lint: venv
	$(TEST_ENV) $(PY) manage.py lint_migrations

# Tiers that need system packages install them when missing and we are root (CI is);
# elsewhere they say what to install and fail: a tier is never skipped silently.
# Debian's postgresql-15 would create and start a "main" cluster on install; the
# createcluster.d drop-in stops that (the tests run their own clusters).
APT_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

gettext-deps:
	@if ! command -v msgfmt >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "== installing GNU gettext (apt) for the translations =="; \
			$(APT_INSTALL) gettext >/dev/null; \
		else \
			echo "msgfmt is missing: sudo apt-get install gettext" >&2; exit 1; \
		fi; \
	fi

# The compiled catalogs (*.mo) are built from the committed .po files, never checked in.
messages: venv gettext-deps
	$(TEST_ENV) $(PY) manage.py compilemessages --ignore=.venv --ignore=.pgdata* -v 0

# The first step of a translation pass: the .po files updated from the sources.
translations: venv gettext-deps
	$(TEST_ENV) $(PY) manage.py check_translations --update

# Every shown string marked, every pt-BR entry translated, the .po files up to date with
# the sources (docs/architecture.md, "Translations").
i18n-check: venv gettext-deps
	$(TEST_ENV) $(PY) manage.py check_translations

browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "== installing chromium (apt) for the browser tests =="; \
			$(APT_INSTALL) chromium >/dev/null; \
		else \
			echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; \
		fi; \
	fi

# The Metabase tier talks to PostgreSQL through the driver Metabase ships: the real
# PostgreSQL JDBC driver, run by a single-file Java program (java Prog.java needs JDK 11+).
JDBC_JAR ?= /usr/share/java/postgresql.jar

jdbc-deps:
	@if [ ! -f "$(JDBC_JAR)" ] || ! command -v java >/dev/null || ! command -v javac >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "== installing a headless JDK and the PostgreSQL JDBC driver (apt) for the Metabase tests =="; \
			$(APT_INSTALL) default-jdk-headless libpostgresql-jdbc-java >/dev/null; \
		else \
			echo "java or $(JDBC_JAR) is missing: sudo apt-get install default-jdk-headless libpostgresql-jdbc-java" >&2; exit 1; \
		fi; \
	fi

pg15-deps:
	@if [ ! -x "$(PG15_BIN)/postgres" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "== installing Debian's PostgreSQL 15 (apt) for the second tier =="; \
			mkdir -p /etc/postgresql-common/createcluster.d; \
			echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/portal-no-main.conf; \
			$(APT_INSTALL) postgresql-15 >/dev/null; \
		else \
			echo "PostgreSQL 15 binaries are missing at $(PG15_BIN): sudo apt-get install postgresql-15" >&2; exit 1; \
		fi; \
	fi

pytest: venv browser-deps jdbc-deps messages
	$(TEST_ENV) $(PY) -m pytest

pytest-pg15: venv browser-deps jdbc-deps pg15-deps messages
	@echo "== the same suite on PostgreSQL 15 ($(PG15_BIN)) =="
	$(TEST_ENV) PG_BIN=$(PG15_BIN) PORTAL_PGDATA=$(CURDIR)/.pgdata15 $(PY) -m pytest

test: lint typecheck check migration-lint messages i18n-check pytest pytest-pg15

# Benchmarks, each on its own database of the embedded cluster (docs/benchmarks.md):
# the admin pages (portal_bench, generated by seed_demo --scale on first use, reused
# afterwards), the diagnostics pages (portal_bench_diag), the production server
# under load and faults (portal_load, 1 million executions) and a live migration
# (portal_bench_migrate, 1 million executions), and what the session rollup's
# triggers cost the gateway's writes (portal_bench, every round rolled back). Each
# writes its table into docs/benchmarks.md.
# BENCH_AGAINST=REV also compares every admin page with that earlier commit's.
BENCH_AGAINST ?=
bench: venv
	$(PY) -m tests.bench.admin
	$(if $(BENCH_AGAINST),$(PY) -m tests.bench.regress --against $(BENCH_AGAINST))
	$(PY) -m tests.bench.render
	$(PY) -m tests.bench.rollup
	$(PY) -m tests.bench.diagnostics
	$(PY) -m tests.bench.load
	$(PY) -m tests.bench.migrate

db-stop: venv
	$(PY) -m devdb stop

db-status: venv
	$(PY) -m devdb status

psql: venv
	$(PY) -m devdb psql

clean: db-stop
	rm -rf .pgdata .pgdata15 staticfiles test-output

# --- deploy --------------------------------------------------------------------------
# The image's own steps (Dockerfile ENV, collectstatic, CMD) under production settings
# against a dedicated embedded cluster; also part of `make test`.
.PHONY: smoke
smoke: venv
	$(VENV)/bin/hadolint Dockerfile
	$(TEST_ENV) $(PY) -m pytest tests/test_production_smoke.py
