# Quick start:  make run   (gateway on 127.0.0.1:10025, capture upstream writing var/delivered/)
#               make test  (the whole test suite; CI runs exactly this)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/gateway.yaml

.PHONY: install run test lint bench soak clean

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

# The ledger soak under faults (about 7 minutes); prints its ledger, fails on any lost message.
soak: install
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
