# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-quick lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/llmmonitor demo

test: $(BIN)/.installed
	$(BIN)/pytest -q

# The quick tests on another interpreter, e.g. `make test-quick PYTHON=python3.10 VENV=.venv-3.10` (CI runs the oldest
# and the newest Python the project declares that the machine has).
test-quick: $(BIN)/.installed
	$(BIN)/pytest -q -m "not slow" -p no:cacheprovider

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) .venv-* llmmonitor-out .pytest_cache .hypothesis
