# Everything sets itself up: a fresh machine with Python 3.11+ needs only `make demo` or `make test`.
# the first interpreter that runs and is 3.11+ (pyenv shims exist for versions that do not run)
PY ?= $(shell for p in python3.13 python3.12 python3.11 python3; do $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SANDBOX ?= .sandbox
PYTEST_WORKERS ?= 2

.PHONY: venv test test-fast demo lint format strip bench docs clean sandbox-up sandbox-down

$(STAMP): pyproject.toml setup.py
	@test -n "$(PY)" || { echo "paynb needs Python 3.11 or newer on PATH (python3.11, python3.12, python3.13 or python3)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'  # dev pulls the lab and sandbox extras
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

test: venv
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

# the quick tier: no notebooks, fault campaigns, wheel builds or large data (markers in pyproject.toml)
test-fast: venv
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -m "not slow and not notebook and not faults"

demo: venv
	$(BIN)/paynb demo --dir $(SANDBOX)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

strip: venv
	$(BIN)/nbstripout notebooks/*/*.ipynb templates/*.ipynb tests/notebooks/*.ipynb

bench: venv
	$(BIN)/python -m benchmarks

docs: venv
	$(BIN)/python tools/gen_cli_reference.py

sandbox-up: venv
	$(BIN)/paynb sandbox up --dir $(SANDBOX)

sandbox-down: venv
	$(BIN)/paynb sandbox down --dir $(SANDBOX)

clean:
	-$(BIN)/paynb sandbox down --dir $(SANDBOX) 2>/dev/null
	rm -rf $(VENV) $(SANDBOX) .paynb .pytest_cache build *.egg-info
