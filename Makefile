# Two commands: `make run` and `make test`. Each creates .venv if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench catalogs browser clean lock upgrade

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

LOCK := requirements/dev.txt
COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

# Install exactly the lock (every package at its pinned version, checked against its hashes),
# then learnbot itself without build isolation, so nothing unpinned is fetched to build it.
# Reinstall when the lock changes.
$(STAMP): $(LOCK) requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Ralph, the LRS the xAPI tests send to, lives in a virtualenv of its own: its pins (fastapi
# 0.114, uvicorn 0.30) cannot share one with learnbot's Starlette. Installed from its own lock.
RALPH_VENV := .venv-ralph
RALPH_STAMP := $(RALPH_VENV)/.installed
$(RALPH_STAMP): requirements/ralph.txt
	$(PYTHON) -m venv $(RALPH_VENV)
	$(RALPH_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/ralph.txt
	touch $(RALPH_STAMP)

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

test: $(STAMP) $(RALPH_STAMP) browser
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

# Recompile the lock after a change to pyproject.toml, keeping every pin that still fits.
lock: $(STAMP)
	$(COMPILE) --extra postgres -o requirements/runtime.txt pyproject.toml requirements/build.in
	$(COMPILE) --extra postgres --extra test -c requirements/runtime.txt -o $(LOCK) \
		pyproject.toml requirements/build.in
	$(COMPILE) -o requirements/ralph.txt requirements/ralph.in requirements/build.in

# Try the newest versions pyproject.toml allows, install them and run the tests. Keep the new
# lock if they pass (commit requirements/); `git checkout requirements/` otherwise.
upgrade: $(STAMP)
	$(COMPILE) --upgrade --extra postgres -o requirements/runtime.txt pyproject.toml \
		requirements/build.in
	$(COMPILE) --upgrade --extra postgres --extra test -c requirements/runtime.txt -o $(LOCK) \
		pyproject.toml requirements/build.in
	$(COMPILE) --upgrade -o requirements/ralph.txt requirements/ralph.in requirements/build.in
	$(MAKE) test

clean:
	rm -rf $(VENV) $(RALPH_VENV) data .mypy_cache .ruff_cache .pytest_cache
