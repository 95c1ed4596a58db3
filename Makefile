# Two commands: `make run` (the whole service, in the foreground) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv migrate clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	eval "$$($(BIN)/python -m devstack.services)" && \
	  export CATALOG_URL=$${CATALOG_URL:-http://127.0.0.1:8090} CART_URL=$${CART_URL:-http://127.0.0.1:8090} && \
	  $(BIN)/python -m devstack.run

# Test processes at once (pytest-xdist; 0: one process). Most tests wait on processes, brokers and
# timers, not on the CPU; which tests go together, and in which order, is tests/parallel.py's.
TEST_PROCESSES ?= 4

# The suite starts about two hundred Python processes (APIs, workers, commands, test processes): with
# PYTHONDONTWRITEBYTECODE set, as some environments do, each would compile the project's modules
# again, and pytest its test modules' assertions (1 s of CPU per test process).
test: $(STAMP)
	eval "$$($(BIN)/python -m devstack.services)" && \
	  env -u PYTHONDONTWRITEBYTECODE \
	  $(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

migrate: $(STAMP)
	eval "$$($(BIN)/python -m devstack.services)" && $(BIN)/flask --app web migrate

clean:
	rm -rf $(VENV) .data test-artifacts
