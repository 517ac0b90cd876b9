# Two commands: `make run` and `make test`. Each creates .venv if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench catalogs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

catalogs: $(STAMP)
	$(BIN)/learnbot lessons compile

run: $(STAMP) catalogs
	LEARNBOT_DEMO=1 $(BIN)/learnbot serve

test: $(STAMP)
	$(BIN)/ruff check bot scheduler tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check bot scheduler tests bench
	$(BIN)/ruff format --check bot scheduler tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/dialogue.py --runs 5

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
