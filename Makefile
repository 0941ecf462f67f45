# Two commands on a Debian-like machine with make and Python 3.11+: `make run` and `make test`.
# They install the system packages they lack (as root, one line each; otherwise they print the
# apt-get command) and use PostgreSQL and Redis from DATABASE_URL/REDIS_URL, else the system's on
# the default ports, else project-local ones under .run/ (scripts/stores.py).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# The suite's settings, never the developer's .env.
TEST_SETTINGS := ENV_FILE= DEBUG=false SECRET_KEY=test-only-secret-key LOG_FILE=
# ...and its stores: TEST_DATABASE_URL or DATABASE_URL when set (pytest-django creates
# test_<name>), else the system's PostgreSQL on 127.0.0.1:5432 when it lets us in, else the
# project-local one; TEST_REDIS_URL, else Redis database 15 of the system's or the local one.
TEST_ENV := $(TEST_SETTINGS) $(BIN)/python scripts/stores.py --for-tests --
SYSTEM_DEPS := $(PYTHON) scripts/system_deps.py

.PHONY: install system-deps bench-deps run test lint format bench clean clean-data image-check

install: $(INSTALLED)

# Debian packages the suite runs, each checked (and installed as root when missing) with one
# line of output: curl (the runbook's commands), promtool (alert rules, a real scrape),
# Chromium and its driver (the admin's browser tests), PostgreSQL and Redis server binaries
# (local and throwaway instances).
system-deps:
	@$(SYSTEM_DEPS) venv curl promtool chromium postgres redis

$(INSTALLED): requirements.txt requirements-dev.txt clients/python/pyproject.toml
	@$(SYSTEM_DEPS) venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

.env:
	cp .env.example .env

# Ports: WEB_PORT (8000), FLOWER_PORT (5555), SIMULATOR_PORT (8001). PostgreSQL and Redis
# binaries are installed only when project-local stores are needed.
run: install .env
	@$(SYSTEM_DEPS) curl
	$(BIN)/python scripts/run_stack.py

test: install system-deps lint
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(TEST_SETTINGS) $(BIN)/mypy

# The image as shipped: build the Dockerfile, then Django's deployment checks inside it with the
# variables production must set (placeholders: nothing is contacted). Needs a Docker engine.
image-check:
	docker build --quiet --tag ai-orchestrator:check .
	docker run --rm -e SECRET_KEY="$$(openssl rand -hex 32 2>/dev/null || date +%s%N | sha256sum)" \
		-e DATABASE_URL=postgres://app:secret@postgres:5432/orchestrator \
		-e REDIS_URL=redis://redis:6379/0 -e ALLOWED_HOSTS=orchestrator.example.com \
		ai-orchestrator:check python manage.py check --deploy
	@if docker compose version >/dev/null 2>&1; then \
		GRAFANA_ADMIN_PASSWORD=placeholder docker compose --file docker-compose.yml config \
			--quiet --no-env-resolution && echo "docker compose config: valid"; \
	else echo "docker compose config skipped: the docker compose plugin is not installed"; fi

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

# Drops the project-local PostgreSQL and Redis data (refused while make run or make test uses them).
clean-data:
	@for owner in .run/postgres.owner .run/redis.owner; do \
		if [ -f $$owner ] && kill -0 "$$(cut -d' ' -f1 $$owner)" 2>/dev/null; then \
			echo "$$owner: in use by pid $$(cut -d' ' -f1 $$owner); stop make run/make test first"; exit 1; fi; \
	done
	rm -rf .run/postgres .run/redis .run/postgres.owner .run/redis.owner

clean: clean-data
	rm -rf $(VENV) .run .pytest_cache .ruff_cache
