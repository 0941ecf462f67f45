# Two commands on a fresh machine (PostgreSQL and Redis running): `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# The suite runs against the real PostgreSQL (pytest-django creates test_<name>) and a Redis
# database of its own, never the developer's .env.
TEST_ENV := ENV_FILE= DEBUG=false SECRET_KEY=test-only-secret-key LOG_FILE= \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

.PHONY: install system-deps bench-deps run test lint format bench clean

install: $(INSTALLED)

# Debian packages the suite runs, installed when missing (as root): promtool and prometheus
# (alert rules, a real scrape), Chromium and its driver (the admin's browser tests).
system-deps:
	@command -v promtool >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

.env:
	cp .env.example .env

run: install .env
	$(BIN)/python scripts/run_stack.py

test: install system-deps lint
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run > /dev/null
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(TEST_ENV) $(BIN)/mypy

# wrk (Debian's) drives the submit path; installed when missing (as root).
bench-deps:
	@command -v wrk >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }

# Ours against the bare project in bench/bare/, alternated in one run: P1-P4 as ratios. Loopback
# only, about 6 minutes; BENCH_DATABASE_URL, BENCH_REDIS_URL and BENCH_BARE_REDIS_URL (Redis
# dbs 8 and 7 by default) keep it off other data. Method: docs/performance.md.
bench: install bench-deps
	$(BIN)/python -m bench.run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache
