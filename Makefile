# `make run` and `make test` work on a fresh clone with only Python 3.11+ and make:
# they build the virtual environment they need in .venv first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

# The embedded defaults of a local run: SQLite, DEBUG, and the built-in sandbox provider
# served by the same web server, so no key and no network are needed.
LOCAL_ENV := DEBUG=1 VIDEO_SANDBOX=1 \
	VIDEO_API_BASE_URL=http://127.0.0.1:$(PORT)/sandbox/v1 VIDEO_API_KEY=sandbox-local-key \
	VIDEO_MODELS=sandbox-video-1,sandbox-video-1-hd VIDEO_SIZES=1280x720,720x1280,1920x1080 \
	VIDEO_SECONDS=4,8,12

.PHONY: install run test lint bench bench-dashboard clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version 2>&1)); set PYTHON=python3.x"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(LOCAL_ENV) $(PY) manage.py run_local --port $(PORT)

# Two processes (pytest-xdist), one per core of the machines we run on; each gets its own
# test database.
test: $(STAMP)
	$(PY) -m pytest -n 2

# Migrations are checked twice: with the sandbox app (its models too) and without it, as
# production migrates.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DEBUG=1 VIDEO_SANDBOX=1 $(PY) manage.py makemigrations --check --dry-run
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

# The poller benchmark first (about half a minute; it reports missed targets but exits 0, so
# the dashboard benchmark still runs), then the dashboard benchmark.
bench: $(STAMP)
	$(PY) bench/poll_bench.py
	$(PY) bench/dashboard_bench.py

bench-dashboard: $(STAMP)
	$(PY) bench/dashboard_bench.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
