# The two commands of the README: `make dev` (the whole stack) and `make test` (the suite).
# Both create .venv and install the project with its dev extra first, when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench bench-sync bench-clients bench-history bench-campaigns bench-memory clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/taskflow dev

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

bench-sync: $(STAMP)
	$(BIN)/python bench/sync_tasks.py

bench-clients: $(STAMP)
	$(BIN)/python bench/clients.py

bench-campaigns: $(STAMP)
	cd bench && ../$(BIN)/python campaigns.py --json results/campaigns-$$(date +%F).json

bench-history: $(STAMP)
	cd bench && ../$(BIN)/python history.py --json results/history-$$(date +%F).json

bench-memory: $(STAMP)
	$(BIN)/python bench/stream_memory.py --json bench/results/stream-memory-$$(date +%F).json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
