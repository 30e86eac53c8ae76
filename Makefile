# Quick start:  make run   (gateway on 127.0.0.1:10025, capture upstream writing var/delivered/)
#               make test  (the whole test suite; CI runs exactly this)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/gateway.yaml

.PHONY: install run test lint bench soak clean constraints

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,fast]'
	touch $@

# The sink plays the district mail server so a newcomer can watch mail flow; Ctrl-C stops both.
run: install
	@install -d -m 0700 var
	@$(BIN)/gateway sink --config $(CONFIG) & sink=$$!; \
	trap 'kill $$sink 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gateway serve --config $(CONFIG)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/run.py

# constraints.txt pins every runtime dependency (not the test tools) as a clean `pip install .`
# resolves it today, for reproducible deployments: `pip install -c constraints.txt .`.
# Refresh it on purpose (a dependency's security release), test, commit.
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/python -m pip install --quiet --upgrade pip
	.constraints-venv/bin/python -m pip install --quiet .
	{ echo "# Runtime dependencies as a clean 'pip install .' resolved them (make constraints)."; \
	  echo "# Python $$(.constraints-venv/bin/python -c 'import platform; print(platform.python_version(), platform.machine())')."; \
	  echo "# Deploy with: pip install -c constraints.txt ."; \
	  .constraints-venv/bin/python -m pip freeze --exclude district-mail-gateway; } > constraints.txt
	rm -rf .constraints-venv

# The ledger soak under faults (about 7 minutes); prints its ledger, fails on any lost message.
soak: install
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .constraints-venv
