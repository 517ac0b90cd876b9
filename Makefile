# Two commands: `make run` and `make test`. Each creates .venv if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench catalogs browser clean

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

# The /sandbox browser test drives Debian's Chromium (Playwright cannot download one here).
# Installed when we may (root with apt-get); otherwise that one test skips and says why.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will skip"; \
	fi

test: $(STAMP) browser
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
