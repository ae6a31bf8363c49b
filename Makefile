# cadre-bot developer commands. Everything runs from the project's own virtualenv (.venv).
#   make run     set up .venv, migrate the database, run the bot (needs CADRE_TELEGRAM_TOKEN)
#   make test    set up .venv and run the whole suite offline (PYTEST_ARGS="-k form -x")
#   make demo    set up .venv and try the bot offline in the terminal (no token needed)
#   make fuzz    the long property-based run: 10,000 examples (docs/security.md)
#   make lint    ruff check + ruff format --check + mypy (strict on services/ models/ config/)
#   make lock    refresh requirements.lock (pinned versions with hashes) from pyproject.toml
#   make format  sort imports and format the code with ruff

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PYTEST_ARGS ?=
DEMO_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test demo fuzz lint format lock clean

help:
	@echo "make venv     create $(VENV) and install cadre-bot with its test tools"
	@echo "make run      run the bot (set CADRE_TELEGRAM_TOKEN, or put it in .env)"
	@echo "make test     run the test suite (PYTEST_ARGS=... passes options to pytest)"
	@echo "make demo     chat with the bot offline as a cadre, duty officer or admin (no token)"
	@echo "make fuzz     10,000 random examples against the bot (FUZZ_SEED, FUZZ_JOBS, FUZZ_REPORT)"
	@echo "make lint     ruff check, ruff format --check and mypy (strict: services, models, config)"
	@echo "make format   fix import order and format the code"
	@echo "make lock     refresh $(LOCK) from pyproject.toml (then commit both)"
	@echo "make clean    remove $(VENV) and caches (keeps ./var and .env)"

venv: $(STAMP)

# The interpreter is created once; the install is redone only when pyproject.toml or the
# lock is newer than the stamp, so `make test` is fast and works offline after the first
# run. Every machine installs the exact versions of requirements.lock, checked by hash.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "cadre-bot needs Python 3.11 or newer; try: make PYTHON=python3.11 ..." >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "could not create $(VENV); on Debian/Ubuntu: apt-get install python3-venv" >&2; \
		exit 1; }

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --no-deps -e .
	@touch $(STAMP)

lock: | $(BIN)/python
	$(BIN)/python -m pip install pip-tools
	$(BIN)/pip-compile --quiet --extra test --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o $(LOCK) pyproject.toml

run: venv
	$(BIN)/cadre-bot run

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

demo: venv
	$(BIN)/cadre-bot demo $(DEMO_ARGS)

# The fuzzed surface (tests/handlers/test_fuzz.py) with the "long" budget: 10,000 examples, a random
# seed unless FUZZ_SEED is set, in FUZZ_JOBS worker processes (each its own seed and SQLite
# database); the merged figures go to FUZZ_REPORT (every 30 s, and at the end).
FUZZ_SEED ?=
FUZZ_JOBS ?= 1
FUZZ_EXAMPLES ?= 10000
FUZZ_REPORT ?= var/fuzz-report.json
fuzz: venv
	$(BIN)/python -m tests.support.fuzz_jobs --jobs $(FUZZ_JOBS) --examples $(FUZZ_EXAMPLES) \
		$(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) --report $(FUZZ_REPORT) -- $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
