# The project's install and run steps live here, not in anyone's shell history.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HUB_TEST_DATABASE_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/hub_test
export HUB_TEST_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672/hub_test
export HUB_CHAOS_DATABASE_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/hub_chaos
# Most of the suite waits (on brokers, simulators, timers, subprocesses), so it runs on more workers than cores;
# each worker has its own database and vhost (tests/parallel.py). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4
export HUB_CHAOS_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672/hub_chaos

.PHONY: install demo test lint services browser wrk promtool bench sandbox chaos

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip<25"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## Quick start 1: the hub's main job on the embedded default (SQLite + in-memory broker + simulators)
demo: $(STAMP)
	$(BIN)/hub demo

## Quick start 2: the whole suite, on SQLite and on PostgreSQL + RabbitMQ (started if down)
test: $(STAMP) services browser wrk promtool
	$(BIN)/ruff check .
	$(BIN)/mypy hub connectors mappings workers
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

services:
	bash scripts/services.sh

## Debian's chromium (and a CJK font) for the console's browser test; skipped when present
browser:
	bash scripts/browser.sh

## Debian's wrk: the bench's load generator (and the test of the bench's wrk driver)
wrk:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -q wrk)

## Debian's prometheus (for its promtool): checks and unit-tests deploy/prometheus/alerts.yml and the dashboard's PromQL
promtool:
	@command -v promtool >/dev/null || ((apt-cache policy prometheus | grep -q 'Candidate: [0-9]' || apt-get update -qq) \
		&& apt-get install -y -q --no-install-recommends prometheus)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy hub connectors mappings workers

# The bench's own database and vhost (HUB_BENCH_*); wrk drives the gateway, pgbench gives the database's limit.
bench: $(STAMP) services wrk
	$(BIN)/python -m bench

sandbox: $(STAMP)
	$(BIN)/hub sandbox

## The chaos suite: hub up under load while services are killed, the database and RabbitMQ go away
## (stops RabbitMQ for 12 s for the whole machine; CHAOS_ARGS=--no-broker-stop leaves that out)
chaos: $(STAMP) services
	HUB_TEST_DATABASE_URL=$(HUB_CHAOS_DATABASE_URL) HUB_TEST_BROKER_URL=$(HUB_CHAOS_BROKER_URL) bash scripts/services.sh
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)
