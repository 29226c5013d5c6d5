# Two entry points: `make run` starts everything, `make test` runs every test.
# Both install what is missing first, so they work on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test contract setup bench browser web clean

run: setup
	$(VENV)/bin/opencode-relay serve --host $(HOST) --port $(PORT)

test: setup browser
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) contract

# schemathesis against a live relay, auth off and on (scripts/contract_check.py)
contract: setup
	$(PY) scripts/contract_check.py

bench: setup browser
	$(PY) -m bench

setup: $(VENV)/.installed node_modules/.installed web

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
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
